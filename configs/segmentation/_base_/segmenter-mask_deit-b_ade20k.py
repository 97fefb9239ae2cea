# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter, mask-transformer head (2 layers), DeiT-B backbone (patch 16, 768-d, 12 heads, 12 layers), ade20k.
_base_ = ["./segmenter_ade20k.py"]
model = dict(backbone=dict(embed_dims=768, num_heads=12, num_layers=12, patch_size=16),
             decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=768, channels=768, embed_dims=768,
                              num_heads=12, num_layers=2, num_classes=150))

# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter, mask-transformer head (2 layers), DeiT-S backbone (patch 16, 384-d, 6 heads, 12 layers), ade20k.
_base_ = ["./segmenter_ade20k.py"]
model = dict(backbone=dict(embed_dims=384, num_heads=6, num_layers=12, patch_size=16),
             decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=384, channels=384, embed_dims=384,
                              num_heads=6, num_layers=2, num_classes=150))

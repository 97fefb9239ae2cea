# Extra, not the paper's table: Pascal Context with 59 classes (PascalContextDataset59), batch 8, window stride
# 480. Table 2 is the 60-class set with Segmenter's recipe (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter, mask-transformer head (2 layers), DeiT-S backbone (patch 16, 384-d, 6 heads, 12 layers), pascal-context-59.
_base_ = ["./segmenter_pascal-context-59.py"]
model = dict(backbone=dict(embed_dims=384, num_heads=6, num_layers=12, patch_size=16),
             decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=384, channels=384, embed_dims=384,
                              num_heads=6, num_layers=2, num_classes=59))

# Segmenter, mask-transformer head, DeiT-B backbone (patch 16, 768-d, 12 heads, 12 layers), Pascal Context (60
# classes). Segmenter's mask decoder (segm/config.yml `decoder.mask_transformer`, segm/model/factory.py): 2 layers,
# 768-d, 12 heads (d / 64), MLP 4 × d, dropout 0.1 (attention weights, projection and MLP), no drop path.
_base_ = ["./segmenter_pascal-context.py"]
model = dict(backbone=dict(embed_dims=768, num_heads=12, num_layers=12, patch_size=16),
             decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=768, channels=768, embed_dims=768,
                              num_heads=12, num_layers=2, mlp_ratio=4, drop_rate=0.1, attn_drop_rate=0.1,
                              drop_path_rate=0.0, dropout_ratio=0.0, num_classes=60))

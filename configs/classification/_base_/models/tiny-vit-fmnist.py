# Tiny ViT for Fashion-MNIST: 28×28×1, patch 7 (4×4 tokens + CLS), dim 64, depth 4, 2 heads, mlp ratio 2, no drop
# path (a 0.14M-parameter model for a short CPU schedule). MaskMix cells of 7 px = one token each: a 4×4 grid, the
# geometry of the official 224-px configs (56-px cells of 4×4 patch-14 tokens).
model = dict(type="MixClassifier", num_classes=10,
             backbone=dict(type="tiny_vit", img_size=28, patch_size=7, in_chans=1, embed_dim=64, depth=4,
                           num_heads=2, mlp_ratio=2.0, drop_path_rate=0.0),
             mix=dict(mask_size=7))

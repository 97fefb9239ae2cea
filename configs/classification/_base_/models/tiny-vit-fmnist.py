# Tiny ViT for Fashion-MNIST: 28×28×1, patch 4 (7×7 tokens), dim 64, depth 4, 2 heads, mlp ratio 2, drop path 0.1.
# MaskMix cells of 8 px = 2×2 tokens: a 4×4 grid whose last row/column is cropped to 4 px (λ_area stays exact).
model = dict(type="MixClassifier", num_classes=10,
             backbone=dict(type="tiny_vit", img_size=28, patch_size=4, in_chans=1, embed_dim=64, depth=4,
                           num_heads=2, mlp_ratio=2.0, drop_path_rate=0.1),
             mix=dict(mask_size=8))

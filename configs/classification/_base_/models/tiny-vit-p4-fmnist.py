# The Fashion-MNIST tiny ViT with 64 tokens: patch 4 at 32×32 (8×8 tokens + CLS), otherwise as tiny-vit-fmnist.py
# (dim 64, depth 4, 2 heads, mlp ratio 2). MaskMix cells of 8 px = 2×2 tokens: the same 4×4 cell grid as the
# 16-token model, each cell now four tokens (the official 224-px geometry: 56-px cells of 4×4 patch-14 tokens).
model = dict(type="MixClassifier", num_classes=10,
             backbone=dict(type="tiny_vit", img_size=32, patch_size=4, in_chans=1, embed_dim=64, depth=4,
                           num_heads=2, mlp_ratio=2.0, drop_path_rate=0.0),
             mix_defaults=dict(mask_size=8))

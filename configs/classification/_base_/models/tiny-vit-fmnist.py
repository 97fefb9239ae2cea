# Tiny ViT for Fashion-MNIST: 28×28×1 in a 2-px black border = 32×32, patch 8 (4×4 tokens + CLS), dim 64, depth 4,
# 2 heads, mlp ratio 2, no drop path (a 0.14M-parameter model for a short CPU schedule). Patch 8 gives the standard
# stride-8 feature map downstream (Segmenter, and Mask R-CNN through a simple feature pyramid). MaskMix cells of 8 px
# = one token each: a 4×4 grid, the geometry of the official 224-px configs (56-px cells of 4×4 patch-14 tokens).
model = dict(type="MixClassifier", num_classes=10,
             backbone=dict(type="tiny_vit", img_size=32, patch_size=8, in_chans=1, embed_dim=64, depth=4,
                           num_heads=2, mlp_ratio=2.0, drop_path_rate=0.0),
             mix_defaults=dict(mask_size=8))

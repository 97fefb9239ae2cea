# XCiT-L24 (timm xcit_large_24_p16_224, random init; 189.1M parameters), drop path 0.25 (XCiT's recipe,
# docs/methods.md, "Recipes"). PAL uses the last class-attention block's CLS attention over the 14×14 patch tokens;
# MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="xcit_large24", drop_path_rate=0.25),
             mix_defaults=dict(mask_size=32))

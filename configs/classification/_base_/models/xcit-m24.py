# XCiT-M24 (timm xcit_medium_24_p16_224, random init; 84.4M parameters), drop path 0.15 (XCiT's recipe,
# docs/methods.md, "Recipes"). PAL uses the last class-attention block's CLS attention over the 14×14 patch tokens;
# MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="xcit_medium24", drop_path_rate=0.15),
             mix_defaults=dict(mask_size=32))

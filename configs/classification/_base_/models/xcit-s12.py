# XCiT-S12 (timm xcit_small_12_p16_224, random init; 26.3M parameters), drop path 0.05 (XCiT's recipe,
# docs/methods.md, "Recipes"). PAL uses the last class-attention block's CLS attention over the 14×14 patch tokens;
# MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="xcit_small12", drop_path_rate=0.05),
             mix_defaults=dict(mask_size=32))

# XCiT-M24 (timm xcit_medium_24_p16_224, random init; 84.4M parameters), drop path 0.15, UNVERIFIED: the value we
# attribute to the XCiT paper's per-model hyper-parameter table (its Table B.1, which the README points to), not checked
# against a copy of the paper; the official repository gives no per-model value (main.py defaults to 0.1, the README's
# example is S12's 0.05). Check it before a full-scale run (docs/methods.md, "Recipes"). PAL uses the last
# class-attention block's CLS attention over the 14×14 patch tokens; MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="xcit_medium24", drop_path_rate=0.15),
             mix_defaults=dict(mask_size=32))

# CaiT-XXS36 (timm cait_xxs36_224, random init; 17.3M parameters), drop path 0.1 (CaiT's recipe, docs/methods.md,
# "Recipes"). PAL uses the last class-attention block's CLS attention over the 14×14 patch tokens; MaskMix cells of
# 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="cait_xxs36", drop_path_rate=0.1),
             mix_defaults=dict(mask_size=32))

# PVT v1-Large (CLS token in stage 4, official parameter names), drop path 0.3 (PVT's recipe for M/L, docs/methods.md,
# "Recipes"). PAL's attention is stage 4's (7×7 tokens of 32 px at 224²), so MaskMix cells are 32 px.
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="pvt_large", drop_path_rate=0.3),
             mix_defaults=dict(mask_size=32))

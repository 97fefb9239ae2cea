# CaiT-XXS24 (timm, random init); PAL uses the last class-attention block's CLS attention.
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="cait_xxs24", drop_path_rate=0.1),
             mix_defaults=dict(mask_size=32))

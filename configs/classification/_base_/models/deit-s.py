# DeiT-Small patch 16 (timm architecture, random init), 224², drop path 0.1; MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="deit_small", drop_path_rate=0.1),
             mix_defaults=dict(mask_size=32))

# DeiT-Base with patch 14 (16×16 tokens at 224²) and 56-px MaskMix cells (4×4 grid), as in the official configs.
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="deit_base_patch14", drop_path_rate=0.1),
             mix_defaults=dict(mask_size=56))

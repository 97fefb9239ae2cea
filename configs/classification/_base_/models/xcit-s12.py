# XCiT-S12 (timm xcit_small_12_p16_224, random init; 26.3M parameters), drop path 0.05: the official repository's README
# training example for this model (facebookresearch/xcit: main.py ... --model xcit_small_12_p16 --drop-path 0.05). PAL
# uses the last class-attention block's CLS attention over the 14×14 patch tokens; MaskMix cells of 32 px (2×2 tokens).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="xcit_small12", drop_path_rate=0.05),
             mix_defaults=dict(mask_size=32))

# CA-Swin-S (classification/models/ca_swin.py: Swin with its last block replaced by a CaiT class-attention block; 49.6M
# parameters), drop path 0.3 (Swin's recipe). PAL uses the class-attention block's CLS attention over the 7×7 stage-4
# tokens of 32 px, so MaskMix cells are 32 px (docs/methods.md, "CA-Swin").
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="ca_swin_small", drop_path_rate=0.3),
             mix_defaults=dict(mask_size=32))

# MS-MLP-Small (dim 96, depths [3,3,27,3]), drop path 0.4; per-stage depthwise kernels
# [[1,1,3,5,7],[1,3,3,5,7],[1,5,5,5,7],[1,7,7,7,7]] (classification/models/msmlp.py).
# No CLS token: MixPro's PAL falls back to area labels (MixClassifier logs it). The token stride is the final feature
# stride, 32 px, so MaskMix cells are 32 px (a 7×7 grid at 224²).
model = dict(type="MixClassifier", num_classes=1000, backbone=dict(type="ms_mlp_small", drop_path_rate=0.4),
             mix_defaults=dict(mask_size=32))

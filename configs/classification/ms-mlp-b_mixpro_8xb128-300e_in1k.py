# MS-MLP-Base, ImageNet-1k, 300 epochs, 8 GPUs × 128 images. Swin-style recipe (docs/methods.md, "Recipes"): AdamW lr
# 1e-3 per 1024 images, wd 0.05, 20 warm-up epochs, cosine to 1e-5, grad clip 5.0, label smoothing 0.1, RandAugment,
# colour jitter 0.4, random erasing 0.25. MixPro on a model without a CLS token: MaskMix 50% / Mixup 25% / CutMix 25%
# with area labels (PAL has no attention).
_base_ = [
    "./_base_/models/ms-mlp-b.py", "./_base_/datasets/imagenet_bs128.py", "./_base_/schedules/adamw_300e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/mixpro.py",
]
model = dict(_base_.method)

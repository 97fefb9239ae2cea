# MS-MLP-Small, ImageNet-1k, 300 epochs, 8 GPUs × 128 images. Swin-style recipe (docs/methods.md, "Recipes"): AdamW lr
# 1e-3 per 1024 images, wd 0.05, 20 warm-up epochs, cosine to 1e-5, grad clip 5.0, label smoothing 0.1, RandAugment,
# colour jitter 0.4, random erasing 0.25. Baseline: Mixup 0.8 / CutMix 1.0, switch probability 0.5.
_base_ = [
    "./_base_/models/ms-mlp-s.py", "./_base_/datasets/imagenet_bs128.py", "./_base_/schedules/adamw_300e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/baseline.py",
]
model = dict(_base_.method)

# SMMix, DeiT-S: SMMix's recipe (ChenMnZ/SMMix main.py defaults and script/train.sh, 4 GPUs × 256; docs/methods.md,
# "SMMix"): SMMix / Mixup 0.8 switch 0.5, smoothing 0.1; AdamW lr 5e-4 per 512 images (1e-3 at 1024), weight decay 0.05,
# 5 warm-up epochs from 1e-6, cosine to 1e-5, no gradient clipping (schedules/adamw_300e_in1k_transmix-deit-b.py holds
# exactly these values), drop path 0.1, RandAugment rand-m9-mstd0.5-inc1, colour jitter 0.4, NO random erasing and NO
# repeated augmentation (main.py's defaults, weaker than DeiT's), no EMA (main.py builds one but its training loop
# never updates it). Deviations: 8×128 instead of 4×256 (the same total batch and lr), 300 epochs without timm's 10
# cool-down epochs at the minimum lr, the cosine stepped per iteration (timm: per epoch).
_base_ = [
    "./_base_/models/deit-s.py", "./_base_/datasets/imagenet_bs128.py",
    "./_base_/schedules/adamw_300e_in1k_transmix-deit-b.py", "./_base_/default_runtime.py",
    "./_base_/methods/smmix.py",
]
model = dict(_base_.method)
data_preprocessor = dict(re_prob=0.0)

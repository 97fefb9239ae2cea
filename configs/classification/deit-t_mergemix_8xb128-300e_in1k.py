# MergeMix, DeiT-T: the official DeiT-S ImageNet recipe (OpenMixup deit_small_merge49_l9_s0_a1_4x256_ep300.py;
# docs/methods.md, "MergeMix"), also for DeiT-T, for which none was released — 49 tokens merged in the
# ToMe pass, λ ~ Beta(1,1), the extra Mixup 0.8 CE; AdamW lr 1e-3 at batch 1024, weight decay 0.05, clipping 5.0, 5
# warm-up epochs (schedules/adamw_300e_in1k_mergemix.py), drop path 0.1, RandAugment m9, random erasing 0.25, no EMA,
# no repeated augmentation. Deviations: 8 GPUs × 128 instead of 4 × 256 (the same total batch); the official run is
# fp16 (train with --amp fp16); random erasing fills per-pixel noise on the device (OpenMixup: noise around the mean
# colour, before normalisation); the last block's attention is read through the patch map it was computed with
# (official_last_merge=False; the official read: official_last_merge=True).
_base_ = [
    "./_base_/models/deit-t.py", "./_base_/datasets/imagenet_bs128.py",
    "./_base_/schedules/adamw_300e_in1k_mergemix.py", "./_base_/default_runtime.py", "./_base_/methods/mergemix.py",
]
model = dict(_base_.method)

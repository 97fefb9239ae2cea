# TL-Align, DeiT-T: TL-Align's recipe (Euphoria16/TL-Align main_tla.py defaults and train_deit_small_tla.sh, the DeiT
# recipe; docs/methods.md, "TL-Align"): token-grid CutMix on every batch (α 1.0), smoothing 0.1; AdamW lr 5e-4 per 512
# images (1e-3 at 8×128), weight decay 0.05, 5 warm-up epochs from 1e-6, cosine to 1e-5, no gradient clipping
# (schedules/adamw_300e_in1k_transmix-deit-b.py holds exactly these values), drop path 0.1, RandAugment
# rand-m9-mstd0.5-inc1, colour jitter 0.4, random erasing 0.25, repeated augmentation (3 repeats), no EMA.
# Deviations: 300 epochs without timm's 10 cool-down epochs at the minimum lr, the cosine stepped per iteration (timm:
# per epoch); the official script is for DeiT-S only, DeiT-T uses the same values.
_base_ = [
    "./_base_/models/deit-t.py", "./_base_/datasets/imagenet_bs128_repeat_aug.py",
    "./_base_/schedules/adamw_300e_in1k_transmix-deit-b.py", "./_base_/default_runtime.py",
    "./_base_/methods/tlalign.py",
]
model = dict(_base_.method)

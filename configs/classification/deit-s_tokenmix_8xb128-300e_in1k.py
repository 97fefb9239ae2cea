# TokenMix with the teacher's label maps, DeiT-S: TokenMix's DeiT-S recipe (Sense-X/TokenMix exp/deit_small/run.sh and
# main.py defaults; docs/methods.md, "TokenMix")
# with the NFNet-F6 label maps of TokenLabeling (label_root: data/imagenet/label_top5_train_nfnet, one .pt per training
# image). Recipe: block masks of 112 of 196 tokens (50%) / Mixup 0.8 (50%), targets weighted by the teacher's maps,
# BCE, smoothing 0.1; AdamW lr 1e-3 at batch 1024, weight decay 0.05, 5 warm-up epochs from 1e-6, cosine to 1e-5, no
# gradient clipping (the same schedule values as schedules/adamw_300e_in1k_transmix-deit-b.py), drop path 0.1, the
# official label-map pipeline (flip, RandAugment rand-m9-mstd0.5-inc1 moving the map, RandomResizedCrop), random
# erasing 0.25, no repeated augmentation, EMA 0.99996 (default_runtime_ema.py). Reported: DeiT-T 73.2, DeiT-S 80.8.
# Deviations: 300 epochs without timm's 10 cool-down epochs at the minimum lr, the cosine stepped per iteration (timm:
# per epoch); the crop box read as (x0, y0, x1, y1) where the official code transposes it (official_box_order=True
# gives its read).
_base_ = [
    "./_base_/models/deit-s.py", "./_base_/datasets/imagenet_label_maps_bs128.py",
    "./_base_/schedules/adamw_300e_in1k_transmix-deit-b.py", "./_base_/default_runtime_ema.py",
    "./_base_/methods/tokenmix.py",
]
model = dict(_base_.method)

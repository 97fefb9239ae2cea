# SMMix, PVT-Tiny v1 (PVT-S/M/L: the same file with their backbone): SMMix's recipe (ChenMnZ/SMMix main.py defaults,
# pvt.py and script/train.sh, 4 GPUs × 256; docs/methods.md, "SMMix"), as deit-s_smmix: SMMix / Mixup 0.8 switch 0.5,
# smoothing 0.1; AdamW lr 5e-4 per 512 images, weight decay 0.05, 5 warm-up epochs from 1e-6, cosine to 1e-5, no
# gradient clipping, drop path 0.1 (main.py's default, as PVT's own T/S recipe), NO random erasing and NO repeated
# augmentation, no EMA. The windows are drawn on stage 4's 7×7 grid of 32-px cells (side 1 … 5) and scored by the last
# stage-4 block's received attention: the official PVT model's stage-4 attention is 7×7, and the released command's
# --side 14 cannot run with it (its region masks would have 196 tokens for 49), so side 7 is the one setting the PVT
# numbers can come from. Weight decay also on the position embeddings: the official PVT's no_weight_decay() names
# cls_token only. Deviations: 8×128 instead of 4×256 (the same total batch and lr), 300 epochs without timm's 10 cool-
# down epochs, the cosine stepped per iteration (timm: per epoch).
_base_ = [
    "./_base_/models/pvt-t.py", "./_base_/datasets/imagenet_bs128.py",
    "./_base_/schedules/adamw_300e_in1k_transmix-deit-b.py", "./_base_/default_runtime.py",
    "./_base_/methods/smmix.py",
]
model = dict(_base_.method, backbone=dict(drop_path_rate=0.1))
data_preprocessor = dict(re_prob=0.0)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={"pos_embed": dict(decay_mult=1.0)}))

# TransMix column, PVT-S: TransMix released configs for DeiT-S and DeiT-B only (Beckschen/TransMix), none for PVT, so
# this keeps PVT's own recipe, the same as the row's baseline and MixPro configs, with TransMix's labels
# (docs/methods.md, "TransMix column recipe").
_base_ = [
    "./_base_/models/pvt-s.py", "./_base_/datasets/imagenet_bs128_repeat_aug.py", "./_base_/schedules/adamw_300e_in1k_pvt.py",
    "./_base_/default_runtime.py", "./_base_/methods/transmix.py",
]
model = dict(_base_.method)

# TransMix column, XCiT-T24: TransMix released configs for DeiT-S and DeiT-B only (Beckschen/TransMix), none for XCiT,
# so this keeps XCiT's own recipe, the same as the row's baseline and MixPro configs, with TransMix's labels
# (docs/methods.md, "TransMix column recipe").
_base_ = [
    "./_base_/models/xcit-t24.py", "./_base_/datasets/imagenet_bs128_repeat_aug_crop1.py", "./_base_/schedules/adamw_400e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/transmix.py",
]
model = dict(_base_.method)

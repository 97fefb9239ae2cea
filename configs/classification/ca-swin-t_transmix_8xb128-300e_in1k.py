# TransMix column, CA-Swin-T: TransMix released configs for DeiT-S and DeiT-B only (Beckschen/TransMix), none for
# CA-Swin, so this keeps Swin's recipe as the MixPro code runs it, the same as the row's baseline and MixPro configs,
# with TransMix's labels (docs/methods.md, "TransMix column recipe").
_base_ = [
    "./_base_/models/ca-swin-t.py", "./_base_/datasets/imagenet_bs128.py", "./_base_/schedules/adamw_300e_in1k_swin.py",
    "./_base_/default_runtime.py", "./_base_/methods/transmix.py",
]
model = dict(_base_.method)

_base_ = [
    "./_base_/models/xcit-s12.py", "./_base_/datasets/imagenet_bs128_repeat_aug_crop1.py", "./_base_/schedules/adamw_400e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/mixpro.py",
]
model = dict(_base_.method)

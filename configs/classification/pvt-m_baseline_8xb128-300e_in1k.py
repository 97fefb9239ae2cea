_base_ = [
    "./_base_/models/pvt-m.py", "./_base_/datasets/imagenet_bs128_repeat_aug.py", "./_base_/schedules/adamw_300e_in1k_pvt-ml.py",
    "./_base_/default_runtime.py", "./_base_/methods/baseline.py",
]
model = dict(_base_.method)

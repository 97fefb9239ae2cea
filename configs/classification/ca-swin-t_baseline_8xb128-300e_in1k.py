_base_ = [
    "./_base_/models/ca-swin-t.py", "./_base_/datasets/imagenet_bs128.py", "./_base_/schedules/adamw_300e_in1k_swin.py",
    "./_base_/default_runtime.py", "./_base_/methods/baseline.py",
]
model = dict(_base_.method)

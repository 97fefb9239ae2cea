_base_ = [
    "./_base_/models/deit-s.py", "./_base_/datasets/imagenet_zip_bs128.py", "./_base_/schedules/adamw_300e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/mixpro.py",
]
model = dict(_base_.method)

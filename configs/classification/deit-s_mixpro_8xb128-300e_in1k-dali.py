# deit-s_mixpro_8xb128-300e_in1k.py with JPEGs decoded and augmented on the GPU by NVIDIA DALI (pip install .[dali]):
# the one change is the dataset base, imagenet_dali_bs128.py instead of imagenet_bs128.py.
_base_ = [
    "./_base_/models/deit-s.py", "./_base_/datasets/imagenet_dali_bs128.py", "./_base_/schedules/adamw_300e_in1k.py",
    "./_base_/default_runtime.py", "./_base_/methods/mixpro.py",
]
model = dict(_base_.method)

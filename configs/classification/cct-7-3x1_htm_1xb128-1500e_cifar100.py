_base_ = [
    "./_base_/models/cct-7-3x1.py", "./_base_/datasets/cifar100_bs128.py", "./_base_/schedules/adamw_cct_cifar_1500e.py",
    "./_base_/default_runtime.py", "./_base_/methods/htm.py",
]
# TokenMixup's CCT-7/3x1 CIFAR-100 setting (docs/methods.md, "TokenMixup") on the official 1500-epoch schedule, the one
# behind the paper's reported top-1 (HTM 83.56).
model = dict(_base_.method)

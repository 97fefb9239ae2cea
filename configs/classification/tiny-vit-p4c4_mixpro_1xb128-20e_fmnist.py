_base_ = [
    "./_base_/models/tiny-vit-p4c4-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/mixpro.py",
]
model = dict(_base_.method)

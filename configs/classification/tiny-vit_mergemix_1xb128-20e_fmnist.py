_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/mergemix.py",
]
# 16 patch tokens, 4 blocks: merge_num N/4 = 4, one token merged after each block's attention (the official share).
model = dict(_base_.method)

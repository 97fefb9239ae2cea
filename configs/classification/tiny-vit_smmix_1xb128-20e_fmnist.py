_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/smmix.py",
]
# SMMix on the 4×4 token grid of the tiny ViT: the official side ratios 0.25 / 0.75 give windows of 1–3 tokens per side
# (3–10 on DeiT's 14×14 grid), λ = (16 − s²)/16 ∈ {15/16, 12/16, 7/16}.
model = dict(_base_.method)

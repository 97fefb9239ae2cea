_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/tlalign.py",
]
# TL-Align on the 4×4 token grid of the tiny ViT: the box side int(4·√(1−λ)) takes 0–4 tokens (λ ∈ {1 − k/16}).
model = dict(_base_.method)

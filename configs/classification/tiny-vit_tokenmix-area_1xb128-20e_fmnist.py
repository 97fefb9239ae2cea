_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/tokenmix-area.py",
]
# 4×4 tokens: extra_tokens 1 keeps the official mask share (112 of 196 tokens, 57%; here int(0.5·16) + 1 = 9 of 16, 56%)
# where the grid width's rule would take 12 of 16.
model = dict(_base_.method,
             method=dict(type="tokenmix-area", switch_prob=0.5, mixup_alpha=0.8, lam=0.5, extra_tokens=1))

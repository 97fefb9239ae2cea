_base_ = [
    "./_base_/models/tiny-vit-fmnist.py", "./_base_/datasets/fashion_mnist_bs128.py", "./_base_/schedules/adamw_fmnist.py",
    "./_base_/default_runtime.py", "./_base_/methods/vtm.py",
]
# VTM scaled from the paper's CCT-7/3x1 (κ 80 of 256 tokens per lower block, at block 2 of 7) to the tiny ViT (depth
# 4, 16 patch tokens): block 2, κ 5 (≈ the same 31% of the tokens) from each of blocks 0 and 1 → 10 extra keys/values.
model = dict(_base_.method, token_mixup=dict(type="vtm", layer=2, kappa=5))

# The official TokenMixup CIFAR-100 schedule behind the paper's numbers: 1500 epochs (+10 cool-down), otherwise as the
# 300-epoch config (AdamW 6e-4, wd 0.06, warm-up 10, cosine to 1e-5).
_base_ = ["./cct-7-3x1_htm_1xb128-300e_cifar100.py"]
max_epochs = 1500
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6 / 6e-4, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=10, end=max_epochs, T_max=max_epochs - 10,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs + 10)

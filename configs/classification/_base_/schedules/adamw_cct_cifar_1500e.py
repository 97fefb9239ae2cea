# The official TokenMixup CIFAR schedule behind the paper's numbers: the CCT recipe (adamw_cct_cifar.py: AdamW 6e-4,
# wd 0.06, 10 warm-up epochs from 1e-6) with the cosine to 1e-5 stretched to epoch 1500, then 10 cool-down epochs.
_base_ = ["./adamw_cct_cifar.py"]
max_epochs = 1500
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6 / 6e-4, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=10, end=max_epochs, T_max=max_epochs - 10,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs + 10)

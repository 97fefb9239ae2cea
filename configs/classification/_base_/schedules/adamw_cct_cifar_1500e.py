# The official TokenMixup CIFAR schedule behind the paper's numbers: the CCT recipe (adamw_cct_cifar.py: AdamW 6e-4,
# wd 0.06, 10 warm-up epochs from 1e-6) with the cosine to 1e-5 stretched to epoch 1500, then 10 cool-down epochs.
_base_ = ["./adamw_cct_cifar.py"]
max_epochs = 1500
param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=max_epochs)]
train_cfg = dict(max_epochs=max_epochs + _base_.cooldown_epochs)

# PVT recipe (docs/methods.md, "Recipes"; PVT's official configs): as DeiT but lr 5e-4 per 512 images, 5 warm-up
# epochs, no gradient clipping (PVT-T/S; PVT-M/L clip at 1.0: adamw_300e_in1k_pvt-ml.py).
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(optimizer=dict(lr=5e-4), clip_grad=None)
warmup_epochs = 5
param_scheduler = [dict(_base_.param_scheduler[0], start_factor=2e-3, end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs)]
auto_scale_lr = dict(base_batch_size=512, enable=True)

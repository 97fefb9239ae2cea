# PVT recipe (docs/methods.md, "Recipes"; PVT's official configs): as DeiT but lr 5e-4 per 512 images, 5 warm-up
# epochs, no gradient clipping (PVT-T/S; PVT-M/L clip at 1.0: adamw_300e_in1k_pvt-ml.py).
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(optimizer=dict(lr=5e-4), clip_grad=None)
warmup_epochs = 5
param_scheduler = [
    dict(type="LinearLR", start_factor=2e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=5, end=300, T_max=295,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=512, enable=True)

# MergeMix's DeiT-S recipe (OpenMixup configs/classification/imagenet/mergemix/deit/deit_small/
# deit_small_merge49_l9_s0_a1_4x256_ep300.py; docs/methods.md, "MergeMix"): adamw_300e_in1k.py (lr 1e-3 per 1024
# images, weight decay 0.05 without decay on norms, biases, pos_embed and cls_token, gradient clipping 5.0, cosine per
# iteration to 1e-5, 300 epochs) with 5 linear warm-up epochs from 1e-5 of the lr instead of 20 from 1e-3.
_base_ = ["./adamw_300e_in1k.py"]
warmup_epochs = 5
max_epochs = 300
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-5, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]

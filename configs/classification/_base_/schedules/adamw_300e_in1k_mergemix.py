# MergeMix's DeiT-S recipe (OpenMixup configs/classification/imagenet/mergemix/deit/deit_small/
# deit_small_merge49_l9_s0_a1_4x256_ep300.py; docs/methods.md, "MergeMix"): adamw_300e_in1k.py (lr 1e-3 per 1024
# images, weight decay 0.05 without decay on norms, biases, pos_embed and cls_token, gradient clipping 5.0, cosine per
# iteration to 1e-5, 300 epochs) with 5 linear warm-up epochs from 1e-5 of the lr instead of 20 from 1e-3.
_base_ = ["./adamw_300e_in1k.py"]
warmup_epochs = 5
param_scheduler = [dict(_base_.param_scheduler[0], start_factor=1e-5, end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs)]

# TransMix's DeiT-B recipe (Beckschen/TransMix, configs/deit_b_transmix.yaml; docs/methods.md, "TransMix column
# recipe"): adamw_300e_in1k.py (lr 1e-3 per 1024 images, weight decay 0.05, cosine to 1e-5, 300 epochs) with 5 warm-up
# epochs from 1e-6 instead of 20 and no gradient clipping (the TransMix train.py default) instead of 5.0.
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(clip_grad=None)
warmup_epochs = 5
param_scheduler = [dict(_base_.param_scheduler[0], end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs)]

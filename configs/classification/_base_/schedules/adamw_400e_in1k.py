# CaiT / XCiT recipe (docs/methods.md, "Recipes"; the DeiT code base both were trained with): 400 epochs, AdamW lr 1e-3
# per 1024 images (5e-4 per 512), wd 0.05 as adamw_300e_in1k.py, 5 warm-up epochs from 1e-6, cosine per iteration to
# 1e-5, no gradient clipping.
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(clip_grad=None)
warmup_epochs = 5
max_epochs = 400
param_scheduler = [dict(_base_.param_scheduler[0], end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs, end=max_epochs)]
train_cfg = dict(max_epochs=max_epochs)

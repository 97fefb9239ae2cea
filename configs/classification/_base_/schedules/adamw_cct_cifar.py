# CCT / TokenMixup CIFAR recipe (timm): AdamW (0.9, 0.999) lr 6e-4 at batch 128 (scaled linearly with the total
# batch), weight decay 0.06 except norms and biases (the positional embedding decays, as in CCT), no gradient
# clipping, 10 warm-up epochs from 1e-6, cosine per iteration to 1e-5 at epoch 300, then timm's 10 cool-down epochs at
# 1e-5: 310 epochs in all. Label smoothing 0.1 and Mixup 0.8 / CutMix 1.0 come with the method.
_base_ = ["./adamw_300e_in1k.py"]
optim_wrapper = dict(optimizer=dict(lr=6e-4, weight_decay=0.06), clip_grad=None,
                     paramwise_cfg=dict(custom_keys={"pos_embed": dict(decay_mult=1.0)}))
warmup_epochs = 10
max_epochs = 300
cooldown_epochs = 10
param_scheduler = [dict(_base_.param_scheduler[0], start_factor=1e-6 / 6e-4, end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs, end=max_epochs)]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs + cooldown_epochs, val_interval=10)
auto_scale_lr = dict(base_batch_size=128, enable=True)

# Short CPU schedule for the tiny ViT on Fashion-MNIST: AdamW lr 4e-3 (batch 128), wd 0.05 with the recipe's
# no-decay groups, 1 warm-up epoch, cosine per iteration to 1e-5, gradient clipping 5.0, 20 epochs.
_base_ = ["./adamw_300e_in1k.py"]
# fused=None: torch's default AdamW implementation (not the in1k recipe's fused one), with which docs/results*.md were made
optim_wrapper = dict(optimizer=dict(lr=4e-3, fused=None))
warmup_epochs = 1
max_epochs = 20
param_scheduler = [dict(_base_.param_scheduler[0], start_factor=1e-2, end=warmup_epochs),
                   dict(_base_.param_scheduler[1], begin=warmup_epochs, end=max_epochs)]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
auto_scale_lr = dict(base_batch_size=128, enable=False)

# default_runtime.py with an exponential moving average of the weights, decay 0.99996 per step (mmengine's EMAHook:
# momentum = 1 − decay = 4e-5; buffers averaged too, as timm's ModelEmaV2), the TransMix column's DeiT recipe
# (docs/methods.md, "TransMix column recipe"). Validation and test run on the EMA weights, so the best checkpoint is
# the best EMA model (what TransMix's train.py reports), and every saved checkpoint holds the EMA weights in
# `state_dict` (mmengine swaps them in; the raw weights go to `ema_state_dict`, prefixed `module.`).
_base_ = ["./default_runtime.py"]
custom_hooks = [*_base_.custom_hooks, dict(type="EMAHook", momentum=4e-5, update_buffers=True)]

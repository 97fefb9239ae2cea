# docs/methods.md, "Recipes": AdamW (0.9, 0.999), wd 0.05 without decay on norms, biases, pos_embed, cls_token; lr 1e-3
# at total batch 1024 scaled linearly (auto_scale_lr); 20 warm-up epochs from 1e-6; cosine per iteration to 1e-5; 300
# epochs; gradient clipping at 5.0 (the AMP wrapper unscales before clipping). fused=True: torch's one-kernel AdamW,
# which also lets the non-finite-loss guard skip a bad update on the device instead of reading the loss on the host
# every step (GuardedOptimWrapper, classification/engine/optim_wrapper.py); defer=True: the guard's flag and the clipping
# norm are read on the host only by SyncFreeRuntimeInfoHook's flushes (docs/methods.md, "Non-finite-loss guard").
optim_wrapper = dict(
    type="GuardedOptimWrapper",
    defer=True,
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, fused=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={"pos_embed": dict(decay_mult=0.0), "cls_token": dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0),
    accumulative_counts=1,
)
# The cosine's period is mmengine's default T_max = end − begin. A schedule based on this one that changes the lengths
# takes these two schedulers from `_base_.param_scheduler` and overrides only what differs.
warmup_epochs = 20
max_epochs = 300
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024, enable=True)

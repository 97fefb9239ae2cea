# COCO 1x schedule of the PVT / MixPro Mask R-CNN recipe: 12 epochs, AdamW lr 2e-4 wd 1e-4 at a total batch of
# 16 (8 GPUs x 2 images), linear warm-up over the first 500 iterations from 0.001 x lr, lr x 0.1 after epochs 8 and 11.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))

# `tools/train.py ... --cfg-options auto_scale_lr.enable=True` scales lr to another total batch size
auto_scale_lr = dict(enable=False, base_batch_size=16)

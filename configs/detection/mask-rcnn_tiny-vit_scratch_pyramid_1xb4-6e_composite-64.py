# `make demo`'s Mask R-CNN, tiny ViT (simple feature pyramid) from random initialisation: the composite set read at
# 64x64 (objects 16-40 px, the scale of the 28-px Fashion-MNIST images the backbone was pretrained on), batch 4,
# 6 epochs, no loader workers. AP is computed on the 128-px annotations (boxes and masks are rescaled back).
# The full-size run is mask-rcnn_tiny-vit_scratch_pyramid_1xb4-12e_composite-128.py.
_base_ = ['./mask-rcnn_tiny-vit_scratch_pyramid_1xb4-12e_composite-128.py']
model = dict(backbone=dict(img_size=(64, 64)))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=6)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True, milestones=[5], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=6))

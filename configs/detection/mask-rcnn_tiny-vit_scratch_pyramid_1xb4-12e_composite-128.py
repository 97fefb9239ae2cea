# Mask R-CNN with the tiny ViT (simple feature pyramid) from random initialisation on the 128x128 composite set,
# 1 process x 4 images, 12 epochs: the reference point for the Fashion-MNIST-pretrained run of `make demo`.
# Generate the data first: python tools/make_downstream_data.py --out data/composite
_base_ = ['./_base_/models/mask-rcnn_tiny-vit_pyramid.py', './_base_/datasets/composite_instance_128.py',
          './_base_/default_runtime.py']
custom_imports = dict(imports=['detection', 'segmentation', 'mmseg.models'],  # mmseg.StrictVisionTransformer
                      allow_failed_imports=False)
# grayscale input, like the Fashion-MNIST classifier the backbone comes from
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=4, max_keep_ckpts=1))

# Mask R-CNN + FPN with a PVT-T v1 backbone from random initialisation on the 128x128 composite set, 1 process x 2
# images, 6 epochs: the CPU-sized run of the detection transfer (tools/train.py THIS_CONFIG).
# Generate the data first: python tools/make_downstream_data.py --out data/composite
# Scaled down for a 2-core CPU: FPN and heads at 64 channels (box head FC 256, mask head 2 convs), smaller anchors
# (objects are 20..80 px), fewer sampled anchors / RoIs / proposals. Backbone, losses and metrics are the COCO ones.
_base_ = [
    './_base_/models/mask-rcnn_pvt-t_fpn.py', './_base_/datasets/composite_instance_128.py',
    './_base_/default_runtime.py',
]
num_classes = 10
channels = 64

model = dict(
    neck=dict(out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_convs=2, in_channels=channels, conv_out_channels=channels, num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(max_per_img=20)),
)

# 6 epochs; lr 2e-4 as in the COCO recipe (same batch per process), warm-up over 100 iterations, x0.1 after epoch 5
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True, milestones=[5], gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=2)

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=2, max_keep_ckpts=1))

# The Mask R-CNN of `tools/reproduce.py --set downstream`: the tiny ViT (simple feature pyramid) from random
# initialisation (the set gives the converted Fashion-MNIST backbones through model.backbone.init_cfg) on the composite
# set with dimmed photo backgrounds, 2000 training / 300 validation images of 64×64 (data/composite-dim-64: see
# configs/segmentation/segmenter-mask_tiny-vit_scratch_1xb16-1500i_composite-dim-64.py), batch 8, 3 epochs (750
# iterations; lr ×0.1 for the last epoch), no loader workers.
_base_ = ['./mask-rcnn_tiny-vit_scratch_pyramid_1xb4-6e_composite-64.py']
data_root = 'data/composite-dim-64/'
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=3, by_epoch=True, milestones=[2], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=3))

# Mask R-CNN + FPN, PVT-T v1 backbone from random initialisation (no ImageNet pretraining): the lower bound for the
# pretraining methods; COCO 2017, 1x schedule, 8 GPUs x 2 images.
_base_ = [
    './_base_/models/mask-rcnn_pvt-t_fpn.py', './_base_/datasets/coco_instance.py',
    './_base_/schedules/adamw_1x.py', './_base_/default_runtime.py',
]
# the base model leaves backbone.init_cfg unset: mmdet's PVT then initialises itself randomly (trunc-normal)

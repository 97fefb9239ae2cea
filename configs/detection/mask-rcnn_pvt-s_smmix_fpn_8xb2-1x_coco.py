# Mask R-CNN + FPN, PVT-S v1 backbone pretrained on ImageNet-1k with SMMix (attention-guided region mixing, region
# head and logit-mix consistency; docs/methods.md, "SMMix"); COCO 2017, 1x schedule (12 epochs), 8 GPUs x 2 images:
# tools/dist_train.sh THIS_CONFIG 8
#
# The backbone checkpoint is produced by
#   tools/dist_train.sh configs/classification/pvt-s_smmix_8xb128-300e_in1k.py 8
#   python tools/convert_checkpoint.py work_dirs/pvt-s_smmix_8xb128-300e_in1k/epoch_300.pth \
#       checkpoints/pvt-s_smmix_8xb128-300e_in1k_mmdet-pvt.pth --to mmdet-pvt
# (the converted file has mmdet's PyramidVisionTransformer key names, hence convert_weights=False; SMMix's region
# head, method.token_head, is not part of the backbone and is dropped).
_base_ = [
    './_base_/models/mask-rcnn_pvt-s_fpn.py', './_base_/datasets/coco_instance.py',
    './_base_/schedules/adamw_1x.py', './_base_/default_runtime.py',
]

model = dict(backbone=dict(
    convert_weights=False,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/pvt-s_smmix_8xb128-300e_in1k_mmdet-pvt.pth')))

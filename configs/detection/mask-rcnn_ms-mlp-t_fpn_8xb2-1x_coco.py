# Mask R-CNN + FPN, MS-MLP-Tiny backbone pretrained on ImageNet-1k with MixPro; COCO 2017, 1x schedule (12 epochs),
# 8 GPUs x 2 images, the same recipe as the PVT configs:  tools/dist_train.sh THIS_CONFIG 8
#
# The backbone (MSMLPBackbone: the classifier's stages, a LayerNorm on each of the 4 outputs, no head) reads our
# classification checkpoint directly, no conversion: init_cfg keeps the `backbone.` tensors of the MixClassifier
# checkpoint, drops the classifier's norm/head and refuses any other mismatch. Produce and place it with
#   tools/dist_train.sh configs/classification/ms-mlp-t_mixpro_8xb128-300e_in1k.py 8
#   cp work_dirs/ms-mlp-t_mixpro_8xb128-300e_in1k/epoch_300.pth checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', './_base_/datasets/coco_instance.py',
    './_base_/schedules/adamw_1x.py', './_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='MSMLPBackbone',  # registered by the `detection` package (custom_imports)
        embed_dim=96,
        depths=[3, 3, 9, 3],
        kernels=[[1, 1, 3, 5, 7], [1, 3, 3, 5, 7], [1, 5, 5, 5, 7], [1, 7, 7, 7, 7]],
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),  # strides 4, 8, 16, 32
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth')),
    neck=dict(type='FPN', in_channels=[96, 192, 384, 768], out_channels=256, num_outs=5),
)

# The composite-set Mask R-CNN of mask-rcnn_pvt-t_scratch_fpn_1xb2-6e_composite-128.py with the PVT-T backbone
# initialised from a converted classifier checkpoint (tools/convert_checkpoint.py CKPT pretrained_ckpt --to mmdet-pvt).
#
# mmengine substitutes config variables when it parses the file, so `--cfg-options pretrained_ckpt=...` would not
# reach the model; point the run at another checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# and, for a classifier trained at another input size than 224 (the shape of its position embeddings),
#   model.backbone.pretrain_img_size=SIZE
_base_ = './mask-rcnn_pvt-t_scratch_fpn_1xb2-6e_composite-128.py'

pretrained_ckpt = 'work_dirs/demo/pvt-t_mmdet-pvt.pth'
pretrain_img_size = 224

model = dict(backbone=dict(
    pretrain_img_size=pretrain_img_size,
    convert_weights=False,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained_ckpt)))

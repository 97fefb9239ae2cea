# The paper's Table 2 setting: Pascal Context, 60 classes, Segmenter's recipe (_base_/segmenter_pascal-context.py).
# Backbone from configs/classification/deit-s_tlalign_8xb128-300e_in1k.py, converted with
#   tools/convert_checkpoint.py work_dirs/deit-s_tlalign_8xb128-300e_in1k/epoch_300.pth \
#       checkpoints/deit-s_tlalign_8xb128-300e_in1k_mmseg-vit-480.pth --to mmseg-vit --img-size 480 480
_base_ = ["./_base_/segmenter-linear_deit-s_pascal-context.py"]
model = dict(backbone=dict(init_cfg=dict(type="Pretrained",
                                         checkpoint="checkpoints/deit-s_tlalign_8xb128-300e_in1k_mmseg-vit-480.pth")))

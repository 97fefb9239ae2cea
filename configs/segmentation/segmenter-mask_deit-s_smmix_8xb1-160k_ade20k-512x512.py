# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Backbone from configs/classification/deit-s_smmix_8xb128-300e_in1k.py, converted with
#   tools/convert_checkpoint.py work_dirs/deit-s_smmix_8xb128-300e_in1k/epoch_300.pth \
#       checkpoints/deit-s_smmix_8xb128-300e_in1k_mmseg-vit.pth --to mmseg-vit --img-size 512 512
_base_ = ["./_base_/segmenter-mask_deit-s_ade20k.py"]
model = dict(backbone=dict(init_cfg=dict(type="Pretrained",
                                         checkpoint="checkpoints/deit-s_smmix_8xb128-300e_in1k_mmseg-vit.pth")))

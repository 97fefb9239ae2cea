# Extra, not the paper's table: Pascal Context with 59 classes (PascalContextDataset59), batch 8, window stride
# 480. Table 2 is the 60-class set with Segmenter's recipe (*_8xb2-80k_pascal-context-480x480.py).
# Backbone from configs/classification/deit-t_transmix_8xb128-300e_in1k.py, converted with
#   tools/convert_checkpoint.py work_dirs/deit-t_transmix_8xb128-300e_in1k/epoch_300.pth \
#       checkpoints/deit-t_transmix_8xb128-300e_in1k_mmseg-vit-480.pth --to mmseg-vit --img-size 480 480
_base_ = ["./_base_/segmenter-mask_deit-t_pascal-context-59.py"]
model = dict(backbone=dict(init_cfg=dict(type="Pretrained",
                                         checkpoint="checkpoints/deit-t_transmix_8xb128-300e_in1k_mmseg-vit-480.pth")))

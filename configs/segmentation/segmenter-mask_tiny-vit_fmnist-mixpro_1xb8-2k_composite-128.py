# Segmenter mask head on the composite set, tiny ViT initialised from the MixPro Fashion-MNIST checkpoint of
# `make demo`, converted with tools/convert_checkpoint.py work_dirs/demo/epoch_15.pth \
#     work_dirs/demo/tiny-vit_mixpro_mmseg-vit-128.pth --to mmseg-vit --img-size 128 128
_base_ = ["./_base_/segmenter_tiny-vit_composite.py"]
model = dict(backbone=dict(init_cfg=dict(type="Pretrained",
                                         checkpoint="work_dirs/demo/tiny-vit_mixpro_mmseg-vit-128.pth")))

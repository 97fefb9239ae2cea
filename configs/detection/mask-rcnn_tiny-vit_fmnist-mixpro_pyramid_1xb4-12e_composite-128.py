# The same run initialised from the MixPro Fashion-MNIST classifier of `make demo`, converted with
#   python tools/convert_checkpoint.py work_dirs/demo/epoch_15.pth work_dirs/demo/tiny-vit_mixpro_mmseg-vit-128.pth \
#       --to mmseg-vit --img-size 128 128
_base_ = ['./mask-rcnn_tiny-vit_scratch_pyramid_1xb4-12e_composite-128.py']
model = dict(backbone=dict(init_cfg=dict(type='Pretrained',
                                         checkpoint='work_dirs/demo/tiny-vit_mixpro_mmseg-vit-128.pth')))

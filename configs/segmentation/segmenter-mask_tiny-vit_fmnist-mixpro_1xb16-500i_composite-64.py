# `make demo`'s Segmenter with the tiny ViT initialised from the MixPro Fashion-MNIST checkpoint (converted by the
# demo to work_dirs/demo/tiny-vit_mixpro_mmseg-vit.pth, or with tools/convert_checkpoint.py ... --to mmseg-vit
# --img-size 64 64: the backbone's img_size, which the checkpoint must match).
_base_ = ["./segmenter-mask_tiny-vit_scratch_1xb16-500i_composite-64.py"]
model = dict(backbone=dict(init_cfg=dict(type="Pretrained", checkpoint="work_dirs/demo/tiny-vit_mixpro_mmseg-vit.pth")))

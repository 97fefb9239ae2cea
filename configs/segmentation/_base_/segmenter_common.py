# Segmenter common to every dataset (docs/methods.md, "Recipes"): mmseg's Segmenter model (ViT + mask head), SGD
# momentum 0.9, lr 1e-3, wd 0, poly 0.9 to 1e-5, batch 8 (8 GPUs × 1), drop path 0.1. The backbone is mmseg's
# VisionTransformer with DeiT's layout (StrictVisionTransformer: its checkpoint loads strictly), initialised from our
# classification checkpoint converted by tools/convert_checkpoint.py --to mmseg-vit --img-size 512 512 (the crop
# size; the leaves set init_cfg).
_base_ = ["mmseg::_base_/models/segmenter_vit-b16_mask.py", "./default_runtime.py",
          "mmseg::_base_/schedules/schedule_160k.py"]
custom_imports = dict(imports=["segmentation"], allow_failed_imports=False)
model = dict(
    pretrained=None,
    # our classifiers were trained on ImageNet-normalised inputs (timm DeiT defaults), not Segmenter's 127.5/127.5
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(type="StrictVisionTransformer", drop_path_rate=0.1, patch_bias=True),  # timm's patch conv: bias
)
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=0.0),
                     clip_grad=None)
param_scheduler = [dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=0, end=160000, by_epoch=False)]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3, backend_args=dict(backend="atomic_local")))

# UPerNet (UPerHead + auxiliary FCN head on stage 3), MS-MLP-Tiny backbone pretrained on ImageNet-1k with MixPro;
# ADE20K 512×512, 160k iterations, 8 GPUs × 2 images. Swin's UPerNet recipe: AdamW lr 6e-5, wd 0.01 (none on norms
# and the layer scale γ), linear warm-up over 1500 iterations, then poly (power 1) to 0; drop path 0.3; mmseg's ADE20K
# pipeline (random resize 0.5–2.0, crop 512, flip, photometric distortion), whole-image inference.
#   tools/dist_train.sh THIS_CONFIG 8
#
# The backbone (MSMLPBackbone) reads our classification checkpoint directly, no conversion. Produce and place it with
#   tools/dist_train.sh configs/classification/ms-mlp-t_mixpro_8xb128-300e_in1k.py 8
#   cp work_dirs/ms-mlp-t_mixpro_8xb128-300e_in1k/epoch_300.pth checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth
_base_ = [
    "mmseg::_base_/models/upernet_swin.py", "mmseg::_base_/datasets/ade20k.py", "./_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_160k.py",
]
custom_imports = dict(imports=["segmentation"], allow_failed_imports=False)  # registers MSMLPBackbone
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type="MSMLPBackbone",
        embed_dim=96,
        depths=[3, 3, 9, 3],
        kernels=[[1, 1, 3, 5, 7], [1, 3, 3, 5, 7], [1, 5, 5, 5, 7], [1, 7, 7, 7, 7]],
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/ms-mlp-t_mixpro_8xb128-300e_in1k.pth")),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150),
)
optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={"gamma": dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_dataloader = dict(batch_size=2)  # × 8 GPUs = 16
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3, backend_args=dict(backend="atomic_local")))

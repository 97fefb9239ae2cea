# Mask R-CNN on the tiny ViT of the Fashion-MNIST configs (patch 8, 64-d, 4 layers, 2 heads, grayscale), CPU-sized.
# A plain ViT has one stride-8 map; a simple feature pyramid (ViTDet-style) resamples it to strides 4..64 —
# mmseg's VisionTransformer (our StrictVisionTransformer: strict checkpoint loading) and MultiLevelNeck (bilinear
# resize + 3x3 conv per level), used here across registries (leaves import 'segmentation' and 'mmseg.models').
# Backbone weights: a Fashion-MNIST classifier converted with tools/convert_checkpoint.py --to mmseg-vit --img-size
# H W for the backbone's img_size (the same file the Segmenter configs of that size load).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
channels = 64
num_classes = 10
model = dict(
    data_preprocessor=dict(mean=[72.93], std=[90.02], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(
        _delete_=True, type='mmseg.StrictVisionTransformer', img_size=(128, 128), patch_size=8, in_channels=1,
        embed_dims=64, num_layers=4, num_heads=2, mlp_ratio=2, qkv_bias=True, patch_bias=True, drop_path_rate=0.0,
        out_indices=(3,), final_norm=True, norm_cfg=dict(type='LN', eps=1e-6), with_cls_token=True,
        interpolate_mode='bicubic'),
    neck=dict(_delete_=True, type='mmseg.MultiLevelNeck', in_channels=[64], out_channels=channels,
              scales=[2, 1, 0.5, 0.25, 0.125]),
    rpn_head=dict(in_channels=channels, feat_channels=channels,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_convs=2, in_channels=channels, conv_out_channels=channels, num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(max_per_img=20)),
)

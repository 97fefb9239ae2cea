# Segmenter on the embedded composite set (tools/make_downstream_data.py → data/composite: Fashion-MNIST objects on
# photos, 128×128, 11 classes incl. background), sized for 2 CPU cores. Backbone: the tiny ViT of the Fashion-MNIST
# configs (patch 8, 64-d, 4 layers, 2 heads, 1 input channel) as mmseg's VisionTransformer (StrictVisionTransformer:
# a checkpoint converted for another img_size / patch / depth is an error, not a warning); images are read as
# grayscale and normalised like Fashion-MNIST so that a converted Fashion-MNIST checkpoint sees familiar inputs.
_base_ = ["./default_runtime.py"]
custom_imports = dict(imports=["segmentation"], allow_failed_imports=False)
classes = ("background", "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
palette = [[0, 0, 0]] + [[(37 * i) % 256, (91 * i) % 256, (151 * i) % 256] for i in range(1, 11)]
data_root = "data/composite"
crop_size = (128, 128)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=dict(type="SegDataPreProcessor", mean=[72.93], std=[90.02], bgr_to_rgb=False, pad_val=0,
                           seg_pad_val=255, size=crop_size),
    backbone=dict(type="StrictVisionTransformer", img_size=crop_size, patch_size=8, in_channels=1, embed_dims=64,
                  num_layers=4, num_heads=2, mlp_ratio=2, qkv_bias=True, patch_bias=True, drop_path_rate=0.0,
                  final_norm=True, norm_cfg=dict(type="LN", eps=1e-6), with_cls_token=True,
                  interpolate_mode="bicubic"),
    decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=64, channels=64, embed_dims=64, num_heads=2,
                     num_layers=2, num_classes=11, dropout_ratio=0.0,
                     loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
    test_cfg=dict(mode="whole"),
)
train_pipeline = [
    dict(type="LoadImageFromFile", color_type="grayscale"),
    dict(type="LoadAnnotations", reduce_zero_label=False),
    dict(type="RandomResize", scale=(128, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.9),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", color_type="grayscale"),
    dict(type="LoadAnnotations", reduce_zero_label=False),
    dict(type="PackSegInputs"),
]
dataset = dict(type="BaseSegDataset", data_root=data_root, metainfo=dict(classes=classes, palette=palette),
               img_suffix=".jpg", seg_map_suffix=".png", reduce_zero_label=False)
train_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True,
                        sampler=dict(type="InfiniteSampler", shuffle=True),
                        dataset=dict(dataset, data_prefix=dict(img_path="images/training",
                                                               seg_map_path="annotations/training"),
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True,
                      sampler=dict(type="DefaultSampler", shuffle=False),
                      dataset=dict(dataset, data_prefix=dict(img_path="images/validation",
                                                             seg_map_path="annotations/validation"),
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"])
test_evaluator = val_evaluator
# AdamW suits a short run from scratch or from a small checkpoint better than the 160k-iteration SGD recipe.
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01), clip_grad=None)
param_scheduler = [dict(type="LinearLR", start_factor=0.01, begin=0, end=100, by_epoch=False),
                   dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=100, end=2000, by_epoch=False)]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=2000, val_interval=1000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
                     checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=1000, max_keep_ckpts=1,
                                     backend_args=dict(backend="atomic_local")),
                     visualization=dict(type="SegVisualizationHook", draw=False))

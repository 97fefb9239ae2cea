# `make demo`'s Segmenter (mask head), tiny ViT from random initialisation, sized for a 10-minute demo on 2 CPU cores:
# the composite set read at 64×64 (objects 16–40 px, the scale of the 28-px Fashion-MNIST images the backbone was
# pretrained on; 8×8 tokens instead of 16×16, a quarter of the compute of the 128-px run), batch 16, 500 iterations
# (27 epochs of the 300 images), no loader workers (decoding a batch is about a tenth of a step here; workers would
# only compete with the demo's training processes for the cores). Loss: cross-entropy + Dice (every class weighs the
# same in Dice; background is 85% of the pixels). mIoU is computed on the 128-px label maps (predictions are resized
# back). The full-size run is segmenter-mask_tiny-vit_scratch_1xb8-2k_composite-128.py.
_base_ = ["./segmenter-mask_tiny-vit_scratch_1xb8-2k_composite-128.py"]
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size), backbone=dict(img_size=crop_size),
             decode_head=dict(loss_decode=[dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                                           dict(type="DiceLoss", use_sigmoid=False, loss_weight=1.0)]))
train_pipeline = [
    dict(type="LoadImageFromFile", color_type="grayscale"),
    dict(type="LoadAnnotations", reduce_zero_label=False),
    dict(type="RandomResize", scale=crop_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.9),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", color_type="grayscale"),
    dict(type="Resize", scale=crop_size, keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=False),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [dict(type="LinearLR", start_factor=0.01, begin=0, end=50, by_epoch=False),
                   dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=50, end=500, by_epoch=False)]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=500, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500))

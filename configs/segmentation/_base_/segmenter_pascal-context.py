# Segmenter on Pascal Context with 60 classes (mmseg's PascalContextDataset: class 0 = background, reduce_zero_label
# False), the paper's Table 2, with Segmenter's own recipe for this dataset (rstrudel/segmenter: segm/config.yml
# `dataset.pascal_context`, segm/train.py, segm/data/config/pascal_context.py; each value and its source in
# docs/methods.md, "Table 2"): total batch 16 (8 GPUs × 2), 80k iterations (256 epochs × 4,998 images / 16), SGD
# momentum 0.9, lr 1e-3, wd 0, poly 0.9 to 1e-5 per iteration (segmenter_common.py), training images resized to a
# short side of 520 × [0.5, 2.0], 480 crops (cat_max_ratio 0.75), flip, photometric distortion; test at a short side
# of 520, sliding window 480 with stride 320. Data: data/VOCdevkit/VOC2010 (docs/downstream.md).
_base_ = ["./segmenter_common.py", "mmseg::_base_/datasets/pascal_context.py"]
crop_size = (480, 480)
short_side = 520  # segm/config.yml im_size; Segmenter resizes to (8 × 520, 520) keeping the ratio: short side 520
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(8 * short_side, short_side), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(8 * short_side, short_side), keep_ratio=True),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]
# Segmenter's multi-scale test (segm/data/base.py set_multiscale_mode): ratios 0.5–1.75 of the (8 × 520, 520) scale,
# each also flipped; its inference (segm/model/utils.py inference → resize) then upsamples an image whose short side
# is below the 480 window to a short side of 480, so ratios 0.5 and 0.75 are resized twice, as there. Used by the
# `_ms` configs through mmseg's SegTTAModel (which, like Segmenter, averages the views' softmax).
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
window = 480


def _ms_resize(r):
    scale = dict(type="Resize", scale=(int(8 * short_side * r), int(short_side * r)), keep_ratio=True)
    if short_side * r >= window:
        return scale
    return dict(type="Compose", transforms=[scale, dict(type="Resize", scale=(8 * window, window), keep_ratio=True)])


tta_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="TestTimeAug", transforms=[
        [_ms_resize(r) for r in img_ratios],
        [dict(type="RandomFlip", prob=0.0, direction="horizontal"),
         dict(type="RandomFlip", prob=1.0, direction="horizontal")],
        [dict(type="LoadAnnotations")], [dict(type="PackSegInputs")]]),
]
model = dict(data_preprocessor=dict(size=crop_size), backbone=dict(img_size=crop_size),
             test_cfg=dict(mode="slide", crop_size=crop_size, stride=(320, 320)))
param_scheduler = [dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=0, end=80000, by_epoch=False)]
# Segmenter evaluates every 8 epochs (≈ 2,500 iterations); we validate and checkpoint every 8,000 as mmseg's 80k
train_cfg = dict(type="IterBasedTrainLoop", max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=8000))
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))  # × 8 GPUs = 16
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

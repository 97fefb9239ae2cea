# Extra, not the paper's table: Pascal Context with 59 classes (PascalContextDataset59), batch 8, window stride
# 480. Table 2 is the 60-class set with Segmenter's recipe (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter on Pascal Context (59 classes, mmseg's PascalContextDataset59) 480×480, 80k iterations, sliding-window
# inference 480/480; otherwise the ADE20K recipe.
_base_ = ["./segmenter_common.py", "mmseg::_base_/datasets/pascal_context_59.py"]
model = dict(data_preprocessor=dict(size=(480, 480)), backbone=dict(img_size=(480, 480)),
             test_cfg=dict(mode="slide", crop_size=(480, 480), stride=(480, 480)))
param_scheduler = [dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=0, end=80000, by_epoch=False)]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
train_dataloader = dict(batch_size=1)  # × 8 GPUs = 8
val_dataloader = dict(batch_size=1)

# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter on ADE20K 512×512 (150 classes): mmseg's pipeline (random resize 0.5–2.0, crop 512, flip, photometric
# distortion), 160k iterations, sliding-window inference 512/512.
_base_ = ["./segmenter_common.py", "mmseg::_base_/datasets/ade20k.py"]
model = dict(data_preprocessor=dict(size=(512, 512)), backbone=dict(img_size=(512, 512)),
             test_cfg=dict(mode="slide", crop_size=(512, 512), stride=(512, 512)))
train_dataloader = dict(batch_size=1)  # × 8 GPUs = 8
val_dataloader = dict(batch_size=1)

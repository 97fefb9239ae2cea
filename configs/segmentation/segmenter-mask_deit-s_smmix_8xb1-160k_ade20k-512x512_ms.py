# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Multi-scale (0.5–1.75) + flip test of segmenter-mask_deit-s_smmix_8xb1-160k_ade20k-512x512.py (mmseg's TTA; test only).
_base_ = ["./segmenter-mask_deit-s_smmix_8xb1-160k_ade20k-512x512.py"]
tta_model = dict(type="SegTTAModel")
model = dict(_delete_=True, type="SegTTAModel", module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))

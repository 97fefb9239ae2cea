# Multi-scale (Segmenter's ratios 0.5–1.75 of the short side 520) + flip test (mmseg's TTA; test only) of
# segmenter-linear_deit-s_tlalign_8xb2-80k_pascal-context-480x480.py.
_base_ = ["./segmenter-linear_deit-s_tlalign_8xb2-80k_pascal-context-480x480.py"]
tta_model = dict(type="SegTTAModel")
model = dict(_delete_=True, type="SegTTAModel", module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))

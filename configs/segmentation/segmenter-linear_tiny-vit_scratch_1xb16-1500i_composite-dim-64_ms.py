# Multi-scale (0.5–1.75) + flip test of segmenter-linear_tiny-vit_scratch_1xb16-1500i_composite-dim-64.py (test only).
_base_ = ["./segmenter-linear_tiny-vit_scratch_1xb16-1500i_composite-dim-64.py"]
model = dict(_delete_=True, type="SegTTAModel", module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))

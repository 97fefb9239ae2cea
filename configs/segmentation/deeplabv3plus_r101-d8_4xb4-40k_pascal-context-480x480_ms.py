# Multi-scale + flip test of the reference row (mmseg 0.x's +MS for its model zoo: ratios 0.5–1.75 of the (520, 520)
# test scale, each also flipped; mmseg's TTA; test only).
_base_ = ["./deeplabv3plus_r101-d8_4xb4-40k_pascal-context-480x480.py"]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="TestTimeAug", transforms=[
        [dict(type="Resize", scale=(int(520 * r), int(520 * r)), keep_ratio=True) for r in img_ratios],
        [dict(type="RandomFlip", prob=0.0, direction="horizontal"),
         dict(type="RandomFlip", prob=1.0, direction="horizontal")],
        [dict(type="LoadAnnotations")], [dict(type="PackSegInputs")]]),
]
tta_model = dict(type="SegTTAModel")
model = dict(_delete_=True, type="SegTTAModel", module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline=tta_pipeline))

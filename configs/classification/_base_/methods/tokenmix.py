# TokenMix with the teacher's label maps (the official method; docs/methods.md, "TokenMix"): tokenmix-area's step
# (block masks 50% / Mixup 0.8 50%, BCE, smoothing 0.1) with each image's label weighted by the share of the NFNet-F6
# teacher's dense map of its class that stays visible. Needs a training dataset that carries the maps
# (_base_/datasets/imagenet_label_maps_bs128.py); refuses to run without them. official_box_order=True reads the crop
# box as the official code does (transposed on the map).
_base_ = ["./tokenmix-area.py"]
method = dict(method=dict(type="tokenmix", official_box_order=False))

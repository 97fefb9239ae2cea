# ImageNet with repeated augmentation (3 repeats) and evaluation at crop ratio 1.0 (resize 224, centre crop 224): the
# CaiT / XCiT recipe (docs/methods.md, "Recipes").
_base_ = ["./imagenet_bs128_repeat_aug.py"]
val_dataloader = dict(dataset=dict(transform=dict(crop_pct=1.0)))
test_dataloader = val_dataloader

# ImageNet with repeated augmentation (3 repeats, the DeiT/PVT sampler) for the PVT recipe.
_base_ = ["./imagenet_bs128.py"]
train_dataloader = dict(sampler=dict(_delete_=True, type="RepeatAugSampler", shuffle=True, num_repeats=3))

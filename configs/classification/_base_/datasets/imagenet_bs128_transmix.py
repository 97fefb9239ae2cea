# ImageNet as TransMix's train.py (timm's, 0.5.x) prepares it for its DeiT configs (docs/methods.md, "TransMix column
# recipe"): imagenet_bs128.py without random erasing (its --reprob defaults to 0 and the configs do not set it) and
# with a random choice of bilinear or bicubic resizing per training image (its --train-interpolation default 'random');
# evaluation unchanged (bicubic, resize 256 → crop 224).
_base_ = ["./imagenet_bs128.py"]
data_preprocessor = dict(re_prob=0.0)
train_dataloader = dict(dataset=dict(transform=dict(interpolation="random")))

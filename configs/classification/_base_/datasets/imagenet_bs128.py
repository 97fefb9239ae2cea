# ImageNet-1k as a folder tree (data/imagenet/{train,val}/<wnid>/*.JPEG); 128 images per GPU. timm transforms:
# RandAugment rand-m9-mstd0.5-inc1, colour jitter 0.4, random erasing 0.25, bicubic; eval resize 256 → crop 224.
# uint8 path: the loader workers decode, crop, flip and RandAugment in uint8 and ship uint8 batches; normalisation
# and random erasing (p 0.25, per-pixel noise) run batched on the device in the model's data preprocessor (mmengine's
# Runner moves this top-level `data_preprocessor` into the model). For the float path set `uint8=False` in the
# transforms (the workers then normalise and erase) and `data_preprocessor.re_prob=0`.
data_root = "data/imagenet"
data_preprocessor = dict(type="ImageNetPreprocessor", re_prob=0.25, re_mode="pixel")
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="ImageNetFolder", root=data_root, split="train",
                 transform=dict(type="timm", is_train=True, input_size=224, uint8=True)),
)
val_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="ImageNetFolder", root=data_root, split="val",
                 transform=dict(type="timm", is_train=False, input_size=224, uint8=True)),
)
test_dataloader = val_dataloader

# ImageNet-1k folder tree (data/imagenet/{train,val}/<wnid>/*.JPEG) decoded on the GPU by NVIDIA DALI (optional
# extra: pip install .[dali]); 128 images per GPU. Same recipe as imagenet_bs128.py: bicubic random resized crop
# (0.08-1, 3/4-4/3), flip, RandAugment rand-m9-mstd0.5-inc1 (DALI ops; differences: docs/clusters.md, "GPU JPEG decoding
# (DALI)"), eval resize 256 -> centre crop 224. The loader hands uint8 (B,3,H,W) batches, already on the GPU, to
# the same ImageNetPreprocessor (normalisation + random erasing p 0.25 on the device). The sampler deals the indices
# (sharding across ranks, epoch order); DALI's threads do the host work, so num_workers=0. Switch a config to it by
# using this file instead of imagenet_bs128.py in its _base_ list; device="cpu" runs the same pipeline without a GPU.
_base_ = ["./imagenet_bs128.py"]
data_root = "data/imagenet"
train_dataloader = dict(
    _delete_=True, batch_size=128, num_workers=0, persistent_workers=False, pin_memory=False, drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="DALIImageNet", is_train=True, batch_size=128, input_size=224, device="gpu", num_threads=8,
                 auto_augment="rand-m9-mstd0.5-inc1",
                 dataset=dict(type="ImageNetFolder", root=data_root, split="train")),
)
val_dataloader = dict(
    _delete_=True, batch_size=128, num_workers=0, persistent_workers=False, pin_memory=False, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="DALIImageNet", is_train=False, batch_size=128, input_size=224, device="gpu", num_threads=8,
                 dataset=dict(type="ImageNetFolder", root=data_root, split="val")),
)
test_dataloader = val_dataloader

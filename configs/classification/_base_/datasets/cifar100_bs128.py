# CIFAR-100 in the official python-pickle format: data/cifar100/cifar-100-python/{train,test} — what
# `torchvision.datasets.CIFAR100("data/cifar100", download=True)` downloads, or cifar-100-python.tar.gz from
# https://www.cs.toronto.edu/~kriz/cifar.html unpacked into data/cifar100/ (read by our `CIFAR` dataset with a
# restricted unpickler). 128 images per GPU. CCT / TokenMixup CIFAR augmentation (timm): RandomResizedCrop 32 with
# scale (0.8, 1), random interpolation, flip, RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 (pixel mode),
# CIFAR-100 mean/std; evaluation at 32×32 without resizing (crop_pct 1.0).
# Training and validation read the in-memory path (classification/data/in_memory.py): the split is one uint8 tensor and a
# worker builds a whole batch per call (CIFARInMemory.__getitems__ + batch_collate); timm's RandAugment is not
# batchable, so it still runs per image, with its RNGs seeded per batch from SeededSampler (reproducible, bit-exact
# on resume, whatever the worker count) — the 8 workers stay to keep a GPU fed. The test loader keeps the per-sample
# CIFAR dataset (tools that build it with their own DataLoader, e.g. classification/experiments/robustness/, get items).
data_root = "data/cifar100"
cifar100_mean, cifar100_std = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type="SeededSampler", shuffle=True),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="CIFARInMemory", root=data_root, split="train", num_classes=100,
                 transform=dict(type="timm", is_train=True, input_size=32, mean=cifar100_mean, std=cifar100_std,
                                auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel",
                                interpolation="random", scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3))),
)
# the test loader stays per-sample (default_collate): the robustness suite builds its own loader from it
eval_transform = dict(type="timm", is_train=False, input_size=32, mean=cifar100_mean, std=cifar100_std, crop_pct=1.0,
                      interpolation="bicubic")
val_dataloader = dict(
    batch_size=500, num_workers=4, persistent_workers=True, pin_memory=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="CIFARInMemory", root=data_root, split="test", num_classes=100,
                 transform=eval_transform),
)
test_dataloader = dict(
    batch_size=500, num_workers=4, persistent_workers=True, pin_memory=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="CIFAR", root=data_root, split="test", num_classes=100,
                 transform=eval_transform),
)

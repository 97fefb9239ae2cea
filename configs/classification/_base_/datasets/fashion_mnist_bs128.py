# Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files), 28×28 grayscale in a 2-px black border
# (32×32, see the tiny-ViT model base), 10 classes.
# The mixing method is the only training augmentation (random crop + flip on top slowed a 12-epoch MixPro run from
# 88.1% to 83.9% test top-1), so methods are compared on what they do alone.
# Training and validation read the in-memory path (classification/data/in_memory.py): the split is one uint8 tensor, each
# batch is indexed and transformed in one call in the training process, no worker processes; SeededSampler is
# DefaultSampler's order with per-batch augmentation seeds (reproducible, bit-exact on resume). The per-sample path
# (FashionMNIST + DefaultSampler + default_collate, any num_workers) stays available and is what the test loader
# uses, so tools that build it with their own DataLoader (classification/experiments/robustness/) get per-sample items.
data_root = "/usr/share/datasets/fashion-mnist"
fmnist_transform = dict(type="fashion_mnist", is_train=False, border=2)
train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False, drop_last=True,
    sampler=dict(type="SeededSampler", shuffle=True),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="FashionMNISTInMemory", root=data_root, split="train", transform=fmnist_transform),
)
val_dataloader = dict(
    batch_size=500, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="batch_collate"),
    dataset=dict(type="FashionMNISTInMemory", root=data_root, split="test", transform=fmnist_transform),
)
test_dataloader = dict(
    batch_size=500, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="FashionMNIST", root=data_root, split="test", transform=fmnist_transform),
)

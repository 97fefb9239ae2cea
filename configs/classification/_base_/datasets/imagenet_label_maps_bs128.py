# ImageNet-1k (imagenet_bs128.py) whose training images carry TokenLabeling's NFNet-F6 dense label maps, for TokenMix:
# one .pt file per training image, label_root/<wnid>/<image name>.pt, (2, 5, H', W') top-5 scores and class ids
# (download: github.com/zihangJiang/TokenLabeling, README "Label data"; docs/methods.md, "TokenMix"). The training
# transform is the official one (Sense-X/TokenMix relabel/): flip image and map, RandAugment rand-m9-mstd0.5-inc1 on
# the whole image with its rotations / shears / translations applied to the map, RandomResizedCrop (bicubic) of the
# image whose box goes with the map; uint8 images, normalised and erased on the device as in imagenet_bs128.py.
_base_ = ["./imagenet_bs128.py"]
label_root = "data/imagenet/label_top5_train_nfnet"
train_dataloader = dict(
    dataset=dict(_delete_=True, type="ImageNetLabelMaps", root="data/imagenet", label_root=label_root, split="train",
                 transform=dict(type="token_label", input_size=224, uint8=True)))

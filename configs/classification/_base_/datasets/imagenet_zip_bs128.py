# ImageNet-1k in the zip + map-file format (data/ImageNet-Zip/{train,val}.zip + {train,val}_map.txt), each rank
# caching its own shard of the compressed bytes in memory (cache_mode='part').
_base_ = ["./imagenet_bs128.py"]
data_root = "data/ImageNet-Zip"
train_dataloader = dict(dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="train",
                                     cache_mode="part", num_classes=1000,
                                     transform=dict(type="timm", is_train=True, input_size=224)))
val_dataloader = dict(dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="val",
                                   cache_mode="no", num_classes=1000,
                                   transform=dict(type="timm", is_train=False, input_size=224)))
test_dataloader = val_dataloader

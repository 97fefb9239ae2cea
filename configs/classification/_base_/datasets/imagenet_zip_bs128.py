# ImageNet-1k in the zip + map-file format (data/ImageNet-Zip/{train,val}.zip + {train,val}_map.txt), each rank
# caching its own shard of the compressed bytes in memory (cache_mode='part') and reading only that shard
# (RankLocalSampler: shuffled within the shard each epoch; the shards of all ranks cover the dataset).
_base_ = ["./imagenet_bs128.py"]
data_root = "data/ImageNet-Zip"
train_dataloader = dict(sampler=dict(_delete_=True, type="RankLocalSampler", shuffle=True),
                        dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="train",
                                     cache_mode="part", num_classes=1000,
                                     transform=dict(type="timm", is_train=True, input_size=224, uint8=True)))
val_dataloader = dict(dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="val",
                                   cache_mode="no", num_classes=1000,
                                   transform=dict(type="timm", is_train=False, input_size=224, uint8=True)))
test_dataloader = val_dataloader

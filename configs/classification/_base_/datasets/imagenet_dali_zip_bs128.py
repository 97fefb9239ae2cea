# ImageNet-1k in the zip + map-file format (data/ImageNet-Zip/{train,val}.zip + {train,val}_map.txt) decoded on the
# GPU by NVIDIA DALI: imagenet_dali_bs128.py with imagenet_zip_bs128.py's data (each rank caches its own shard of
# the compressed bytes, cache_mode='part', and reads only that shard through RankLocalSampler).
_base_ = ["./imagenet_dali_bs128.py"]
data_root = "data/ImageNet-Zip"
train_dataloader = dict(sampler=dict(_delete_=True, type="RankLocalSampler", shuffle=True),
                        dataset=dict(dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="train",
                                                  cache_mode="part", num_classes=1000)))
val_dataloader = dict(dataset=dict(dataset=dict(_delete_=True, type="ImageNetZip", root=data_root, split="val",
                                                cache_mode="no", num_classes=1000)))
test_dataloader = val_dataloader

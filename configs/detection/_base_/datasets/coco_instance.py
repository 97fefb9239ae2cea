# COCO 2017 instance segmentation at data/coco/ (annotations/instances_{train,val}2017.json, train2017/, val2017/):
# mmdet's standard pipeline (1333x800 keep-ratio resize, flip 0.5), 2 images per GPU, bbox + segm CocoMetric.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader

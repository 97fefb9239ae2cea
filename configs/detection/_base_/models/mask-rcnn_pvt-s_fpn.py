# Mask R-CNN + FPN on a PVT v1 Small backbone (the Tiny model with depths [3, 4, 6, 3]).
_base_ = './mask-rcnn_pvt-t_fpn.py'

model = dict(backbone=dict(num_layers=[3, 4, 6, 3]))

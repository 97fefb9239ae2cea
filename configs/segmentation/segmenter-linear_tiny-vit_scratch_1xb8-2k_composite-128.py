# Segmenter linear head on the composite set, tiny ViT from random initialisation.
_base_ = ["./_base_/segmenter_tiny-vit_composite.py"]
model = dict(decode_head=dict(_delete_=True, type="FCNHead", in_channels=64, channels=64, num_convs=0,
                              dropout_ratio=0.0, concat_input=False, num_classes=11,
                              loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)))

"""Classification checkpoints to the downstream tasks: convert (our / timm / release layouts → mmseg ViT, mmdet PVT;
``tools/convert_checkpoint.py``), convert_models (the target backbones, built from a state dict's shapes) and
downstream_data (small segmentation + detection sets generated on the machine).
"""

# Segmenter mask head on the composite set, tiny ViT from random initialisation (the reference for transfer).
_base_ = ["./_base_/segmenter_tiny-vit_composite.py"]

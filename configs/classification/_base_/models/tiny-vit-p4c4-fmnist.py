# The 64-token Fashion-MNIST tiny ViT (tiny-vit-p4-fmnist.py) with MaskMix cells of 4 px = one token each: an 8×8
# cell grid.
_base_ = ["./tiny-vit-p4-fmnist.py"]
model = dict(mix_defaults=dict(mask_size=4))

"""Datasets by source — fashion_mnist, imagenet (folder / zip), cifar — with transforms (timm, Fashion-MNIST; the
dataset contract), sampler (repeated augmentation, rank-local), in_memory (batched Fashion-MNIST / CIFAR without
workers), dali (NVIDIA DALI ImageNet loader), preprocessor (device normalisation + erasing of uint8 batches) and
augment_compat (timm's RandAugment under Pillow ≥ 13). ``classification.register_all`` imports (registers) them all.
"""

"""Semantic segmentation transfer (mmsegmentation 1.2.2): Segmenter linear / mask-transformer heads on our DeiT and
tiny-ViT backbones. The models are mmseg's own (``VisionTransformer``, ``SegmenterMaskTransformerHead``,
``FCNHead`` with no convs = linear); the configs live in ``configs/segmentation``. Backbones are initialised from our
classification checkpoints converted with ``tools/convert_checkpoint.py --to mmseg-vit``.

Importing this package (``custom_imports=dict(imports=['segmentation'])``) installs the weights-only checkpoint
loader and the ``atomic_local`` checkpoint backend of ``classification.engine`` for mmseg runs too.
"""
from classification import engine  # noqa: F401  (safe loading, atomic checkpoints)

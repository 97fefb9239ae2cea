"""Semantic segmentation transfer (mmsegmentation 1.2.2): Segmenter linear / mask-transformer heads on our DeiT and
tiny-ViT backbones, and UPerNet on MS-MLP. The Segmenter models are mmseg's own (``VisionTransformer``,
``SegmenterMaskTransformerHead``, ``FCNHead`` with no convs = linear), initialised from our classification
checkpoints converted with ``tools/convert_checkpoint.py --to mmseg-vit``. ``MSMLPBackbone``
(``classification.models.msmlp``) is registered here in mmseg's MODELS; it reads our classification checkpoints
directly (no conversion). The configs live in ``configs/segmentation``.

Importing this package (``custom_imports=dict(imports=['segmentation'])``) installs the weights-only checkpoint
loader and the ``atomic_local`` checkpoint backend of ``classification.engine`` for mmseg runs too.
"""
from mmseg.registry import MODELS

from classification import engine  # noqa: F401  (safe loading, atomic checkpoints)
from classification.models.msmlp import MSMLPBackbone

MODELS.register_module(module=MSMLPBackbone, force=True)

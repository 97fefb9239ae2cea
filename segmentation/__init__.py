"""Semantic segmentation transfer (mmsegmentation 1.2.2): Segmenter linear / mask-transformer heads on our DeiT and
tiny-ViT backbones, and UPerNet on MS-MLP. The Segmenter models are mmseg's own (``SegmenterMaskTransformerHead``,
``FCNHead`` with no convs = linear) on ``StrictVisionTransformer`` (mmseg's ViT loading its checkpoint strictly,
:mod:`segmentation.backbones`), initialised from classification checkpoints converted with
``tools/convert_checkpoint.py --to mmseg-vit --img-size H W`` (:mod:`classification.transfer.convert`).
``MSMLPBackbone`` (``classification.models.msmlp``) is registered here in mmseg's MODELS; it reads our
classification checkpoints directly (no conversion). The configs live in ``configs/segmentation``.

Importing this package (``custom_imports=dict(imports=['segmentation'])``) imports ``classification.foundation.atomic_backend``, which
registers the ``atomic_local`` checkpoint backend the configs write through; weights-only checkpoint reading is
installed by the tools (:func:`classification.foundation.checkpoints.install_safe_checkpoint_loading`), not by the import.
"""
from mmseg.registry import MODELS

import classification.foundation.atomic_backend  # noqa: F401  (registers the atomic_local checkpoint backend)
from classification.models.msmlp import MSMLPBackbone
from segmentation.backbones import StrictVisionTransformer  # noqa: F401  (registers it)

MODELS.register_module(module=MSMLPBackbone)

"""COCO detection / instance segmentation transfer (mmdetection 3.x): Mask R-CNN + FPN on PVT v1 and MS-MLP backbones.

The configs (``configs/detection/``, ``default_scope='mmdet'``, ``custom_imports=dict(imports=['detection'])``) build
mmdet's ``MaskRCNN``, ``FPN``, ``CocoDataset`` and ``CocoMetric`` on ``StrictPyramidVisionTransformer`` (mmdet's PVT
v1 with ``use_abs_pos_embed=True``, loading its ``init_cfg`` checkpoint strictly: :mod:`detection.backbones`) or
``MSMLPBackbone`` (``classification.models.msmlp``, registered here in mmdet's MODELS; it reads our classification
checkpoints directly, no conversion). PVT weights come from our classifiers converted with
``tools/convert_checkpoint.py --to mmdet-pvt`` (:mod:`classification.transfer.convert`: mmdet's key names already,
hence ``convert_weights=False``). Importing this package imports ``classification.foundation.atomic_backend``, which registers the
``atomic_local`` checkpoint backend the configs write through; weights-only checkpoint reading is installed by the
tools (:func:`classification.foundation.checkpoints.install_safe_checkpoint_loading`), not by the import.
"""
from mmdet.registry import MODELS

import classification.foundation.atomic_backend  # noqa: F401  (registers the atomic_local checkpoint backend)
from classification.models.msmlp import MSMLPBackbone
from detection.backbones import StrictPyramidVisionTransformer  # noqa: F401  (registers it)

MODELS.register_module(module=MSMLPBackbone)

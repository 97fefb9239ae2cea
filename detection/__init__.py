"""COCO detection / instance segmentation transfer: Mask R-CNN + FPN (mmdetection 3.x) on PVT v1 and MS-MLP
backbones.

The detection configs build ``StrictPyramidVisionTransformer`` (mmdet's PVT v1 with ``use_abs_pos_embed=True``,
loading its ``init_cfg`` checkpoint strictly: :mod:`detection.backbones`),
``FPN``, ``MaskRCNN``, ``CocoDataset``, ``CocoMetric``, and our ``MSMLPBackbone`` (``classification.models.msmlp``,
registered here in mmdet's MODELS; it loads our classification checkpoints directly, no conversion). The configs
(``configs/detection/``, ``default_scope='mmdet'``) import this package through
``custom_imports = dict(imports=['detection'])``; it imports ``classification.engine``, which registers the
``atomic_local`` file backend the configs' ``CheckpointHook`` writes through (temp file + fsync + rename).
Weights-only checkpoint loading (an allow-list; torch >= 2.6 refuses mmengine's pickled extras by default and
mmengine 0.10.7 does not pass ``weights_only``) is installed by the tools through
:func:`classification.engine.checkpoints.install_safe_checkpoint_loading`; mmdet's PVT reads its ``init_cfg`` checkpoint
through ``CheckpointLoader.load_checkpoint``, so after that call a pretrained backbone is loaded the same safe way.

Backbone weights come from our classifiers (``classification/models/pvt.py``, official PVT v1 names)::

    python tools/train.py configs/classification/pvt-s_mixpro_8xb128-300e_in1k.py
    python tools/convert_checkpoint.py work_dirs/pvt-s_mixpro_8xb128-300e_in1k/epoch_300.pth \\
        checkpoints/pvt-s_mixpro_8xb128-300e_in1k_mmdet-pvt.pth --to mmdet-pvt

The converted file already has mmdet's key names (mmdet's ``pvt_convert`` applied, ``head`` / ``norm`` /
``cls_token`` and the CLS entry of ``pos_embed4`` dropped), hence ``convert_weights=False`` in the configs.
"""
from mmdet.registry import MODELS

import classification.engine  # noqa: F401  (registers the atomic_local checkpoint backend)
from classification.models.msmlp import MSMLPBackbone
from detection.backbones import StrictPyramidVisionTransformer  # noqa: F401  (registers it)

MODELS.register_module(module=MSMLPBackbone)

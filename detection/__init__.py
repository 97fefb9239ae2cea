"""COCO detection / instance segmentation transfer: Mask R-CNN + FPN (mmdetection 3.x) on PVT v1 and MS-MLP
backbones.

The detection configs build mmdet's own ``PyramidVisionTransformer`` (PVT v1 with ``use_abs_pos_embed=True``),
``FPN``, ``MaskRCNN``, ``CocoDataset``, ``CocoMetric``, and our ``MSMLPBackbone`` (``classification.models.msmlp``,
registered here in mmdet's MODELS; it loads our classification checkpoints directly, no conversion). The configs
(``configs/detection/``, ``default_scope='mmdet'``) import this package through
``custom_imports = dict(imports=['detection'])`` for what it brings in from :mod:`classification.engine`:

- weights-only checkpoint loading with an allow-list (torch >= 2.6 refuses mmengine's pickled extras by default;
  mmengine 0.10.7 does not pass ``weights_only``). mmdet's PVT reads its ``init_cfg`` checkpoint through
  ``CheckpointLoader.load_checkpoint``, so a pretrained backbone is loaded the same safe way;
- the ``atomic_local`` file backend the configs' ``CheckpointHook`` writes through (temp file + fsync + rename).

Backbone weights come from our classifiers (``classification/models/pvt.py``, official PVT v1 names)::

    python tools/train.py configs/classification/pvt-s_mixpro_8xb128-300e_in1k.py
    python tools/convert_checkpoint.py work_dirs/pvt-s_mixpro_8xb128-300e_in1k/epoch_300.pth \\
        checkpoints/pvt-s_mixpro_8xb128-300e_in1k_mmdet-pvt.pth --to mmdet-pvt

The converted file already has mmdet's key names (mmdet's ``pvt_convert`` applied, ``head`` / ``norm`` /
``cls_token`` and the CLS entry of ``pos_embed4`` dropped), hence ``convert_weights=False`` in the configs.
"""
from mmdet.registry import MODELS

from classification import engine  # noqa: F401  (weights-only checkpoint loading, atomic_local backend)
from classification.models.msmlp import MSMLPBackbone

MODELS.register_module(module=MSMLPBackbone, force=True)

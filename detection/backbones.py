"""``StrictPyramidVisionTransformer``: mmdet's PVT whose ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads
strictly (:func:`classification.foundation.checkpoints.load_init_checkpoint`), used by the PVT configs here. mmdet's own
loading only warns on a size mismatch, leaving those weights random; here a checkpoint of another patch size,
position grid (``pretrain_img_size``) or depth stops the run before training, naming each key and both shapes.
``convert_weights=True`` applies mmdet's ``pvt_convert`` first (official PVT v1 names, e.g. a PVT release as is).
"""
from mmdet.models.backbones.pvt import PyramidVisionTransformer, pvt_convert
from mmdet.registry import MODELS

from classification.foundation.checkpoints import load_init_checkpoint


@MODELS.register_module()
class StrictPyramidVisionTransformer(PyramidVisionTransformer):
    """mmdet's ``PyramidVisionTransformer``; a ``Pretrained`` ``init_cfg`` (optionally with ``partial`` key patterns)
    loads strictly, without one it initialises as mmdet does."""

    def __init__(self, pretrain_img_size=224, **kwargs):
        super().__init__(pretrain_img_size=pretrain_img_size, **kwargs)
        self.pretrain_img_size = pretrain_img_size  # named in the error of a checkpoint of another input size

    def init_weights(self):
        if isinstance(self.init_cfg, dict) and self.init_cfg.get("type") == "Pretrained":
            load_init_checkpoint(self, self.init_cfg, convert=pvt_convert if self.convert_weights else None, hint=(
                f"Convert the classifier with tools/convert_checkpoint.py SRC DST --to mmdet-pvt and set "
                f"model.backbone.pretrain_img_size to its input size (now {self.pretrain_img_size})"))
        else:
            super().init_weights()

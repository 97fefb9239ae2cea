"""``StrictVisionTransformer``: mmseg's ``VisionTransformer`` whose ``init_cfg=dict(type='Pretrained',
checkpoint=...)`` loads strictly (:func:`classification.foundation.checkpoints.load_init_checkpoint`), used by every ViT
config here. mmseg's own loading only warns on a size mismatch and resizes ``pos_embed`` silently; here a checkpoint of
another patch size, position grid (image size) or depth stops the run before training, naming each key and both
shapes. A checkpoint trained at another image size is resized explicitly and logged, when it is converted:
``tools/convert_checkpoint.py SRC DST --to mmseg-vit --img-size H W`` with the backbone's ``img_size``.
"""
from mmseg.models.backbones import VisionTransformer
from mmseg.registry import MODELS

from classification.foundation.checkpoints import load_init_checkpoint


@MODELS.register_module()
class StrictVisionTransformer(VisionTransformer):
    """mmseg's ``VisionTransformer``; a ``Pretrained`` ``init_cfg`` (optionally with ``partial`` key patterns) loads
    strictly, any other ``init_cfg`` (or none) initialises as mmseg does."""

    def init_weights(self):
        if isinstance(self.init_cfg, dict) and self.init_cfg.get("type") == "Pretrained":
            h, w = self.img_size
            load_init_checkpoint(self, self.init_cfg, hint=(
                f"Convert the classifier for this backbone: tools/convert_checkpoint.py SRC DST --to mmseg-vit "
                f"--img-size {h} {w} (patch {self.patch_size}, {len(self.layers)} layers)"))
        else:
            super().init_weights()

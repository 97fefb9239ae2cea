"""Classifier factories, registered in mmengine's MODELS registry by name (``dict(type='deit_small', ...)``).

The contract every classifier follows: ``forward(x) -> logits``; ``mixpro_core.forward_with_attention`` gives
``(logits, cls_attn (B,N) or None)``; attributes ``token_stride`` (pixel size of a token of cls_attn — the mixing
patch size) and ``has_cls_attention``; ``set_grad_checkpointing``. Beside them: mix_classifier (``MixClassifier``, the
mmengine model of every classification run) and metrics (``TopKAccuracy``).
"""
from mmengine.registry import MODELS

from . import ca_swin, msmlp, pvt, vits
from . import cct

FACTORIES = {
    "deit_tiny": vits.deit_tiny, "deit_small": vits.deit_small, "deit_base": vits.deit_base,
    "deit_tiny_patch14": vits.deit_tiny_patch14, "deit_small_patch14": vits.deit_small_patch14,
    "deit_base_patch14": vits.deit_base_patch14, "tiny_vit": vits.tiny_vit,
    "cait_xxs36": vits.cait_xxs36, "xcit_tiny24": vits.xcit_tiny24, "xcit_small12": vits.xcit_small12,
    "xcit_medium24": vits.xcit_medium24, "xcit_large24": vits.xcit_large24,
    "ca_swin_tiny": ca_swin.ca_swin_tiny, "ca_swin_small": ca_swin.ca_swin_small,
    "pvt_tiny": pvt.pvt_tiny, "pvt_small": pvt.pvt_small, "pvt_medium": pvt.pvt_medium, "pvt_large": pvt.pvt_large,
    "cct_7_3x1": cct.cct_7_3x1,
    "ms_mlp_tiny": msmlp.ms_mlp_tiny, "ms_mlp_small": msmlp.ms_mlp_small, "ms_mlp_base": msmlp.ms_mlp_base,
}
for _name, _factory in FACTORIES.items():
    MODELS.register_module(name=_name, module=_factory)

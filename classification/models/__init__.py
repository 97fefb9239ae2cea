"""Classifier factories, each registered in mmengine's MODELS where it is defined (``dict(type='deit_small', ...)``).

The contract every classifier follows: ``forward(x) -> logits``; ``mixpro_core.forward_with_attention`` gives
``(logits, cls_attn (B,N) or None)``; attributes ``token_stride`` (pixel size of a token of cls_attn — the mixing
patch size) and ``has_cls_attention``; ``set_grad_checkpointing``. Families: vits (DeiT, tiny_vit, CaiT, XCiT), pvt,
ca_swin, cct, msmlp. Beside them: mix_classifier (``MixClassifier``, the mmengine model of every classification run)
and metrics (``TopKAccuracy``).
"""
from . import ca_swin, cct, msmlp, pvt, vits  # noqa: F401  (registration)

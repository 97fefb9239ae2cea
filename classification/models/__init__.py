"""Classifier factories, each registered in mmengine's MODELS where it is defined (``dict(type='deit_small', ...)``)
when its module is imported (:mod:`classification.register_all` imports them all).

The contract every classifier follows: ``forward(x) -> logits``; ``mixpro_core.forward_with_attention`` gives
``(logits, cls_attn (B,N) or None)``; ``mixpro_core.token_stride(model)`` (pixel size of a token of cls_attn — the
mixing patch size) and ``mixpro_core.has_cls_attention(model)``, which read the attributes of those names where a
class of ours declares them and timm's own structure for timm's classes (vits); ``set_grad_checkpointing``.
Families: vits (DeiT, tiny_vit, CaiT, XCiT), pvt, ca_swin, cct, msmlp. Beside them: mix_classifier (``MixClassifier``, the mmengine model of every classification run);
the evaluators are in :mod:`classification.evaluation`.
"""

"""Plain-ViT classifiers from timm (random init; ``pretrained`` loads a local file only) and their CLS attention.

Every classifier of ours follows one contract (see ``classification.models``): ``forward(x) -> logits``;
``mixpro_core.forward_with_attention(model, x) -> (logits, cls_attn (B,N) or None)``; ``mixpro_core.token_stride``
(pixel size of the tokens cls_attn refers to) and ``mixpro_core.has_cls_attention``. The models here are timm's own
classes, unchanged (timm's state-dict keys): those two functions read timm's ``patch_embed.patch_size`` and CLS token.

Registered in mmengine's MODELS: deit_{tiny,small,base}[_patch14], tiny_vit, cait_xxs36, xcit_{tiny24,small12,
medium24,large24}. DeiT / ViT use mixpro_core's default attention path (hook on the last block's fused qkv). CaiT and
XCiT take PAL's attention from their last class-attention block (:func:`class_attention_forward`, also used by
CA-Swin; registered in ATTENTION_FORWARDS here). CaiT-XXS36 and XCiT-T24/S12/M24/L24 are the MixPro paper's Table 1
rows (docs/methods.md, "Paper tables").
"""
from __future__ import annotations

from typing import Optional

import timm
import torch
from mmengine.registry import MODELS
from timm.models.cait import Cait
from timm.models.xcit import Xcit

from mixpro_core import ATTENTION_FORWARDS, attention_key, cls_row_attention

from .pretrained import load_pretrained


def _finish(model: torch.nn.Module, pretrained: Optional[str]) -> torch.nn.Module:
    if pretrained:
        load_pretrained(model, pretrained)
    return model


def _vit(name: str, patch_size: Optional[int] = None, pretrained: Optional[str] = None, **kwargs):
    if patch_size is not None:
        kwargs["patch_size"] = patch_size
    return _finish(timm.create_model(name, pretrained=False, **kwargs), pretrained)


def _timm_classifier(name: str, timm_name: str, patch_size: Optional[int] = None):
    """Register ``name`` in MODELS: ``factory(pretrained=None, **kw)`` builds timm's ``timm_name`` with ``kw`` (and
    ``patch_size`` when given: a fixed option of the variant, not to be passed again)."""
    fixed = {} if patch_size is None else {"patch_size": patch_size}

    def factory(pretrained=None, **kw):
        return _vit(timm_name, pretrained=pretrained, **fixed, **kw)

    factory.__name__ = factory.__qualname__ = name
    return MODELS.register_module(name=name, module=factory)


# DeiT patch 16 (docs/methods.md, "Recipes") and the patch-14 variants of the official MixPro configs (16×16 tokens
# at 224).
deit_tiny = _timm_classifier("deit_tiny", "deit_tiny_patch16_224")
deit_small = _timm_classifier("deit_small", "deit_small_patch16_224")
deit_base = _timm_classifier("deit_base", "deit_base_patch16_224")
deit_tiny_patch14 = _timm_classifier("deit_tiny_patch14", "deit_tiny_patch16_224", patch_size=14)
deit_small_patch14 = _timm_classifier("deit_small_patch14", "deit_small_patch16_224", patch_size=14)
deit_base_patch14 = _timm_classifier("deit_base_patch14", "deit_base_patch16_224", patch_size=14)
cait_xxs36 = _timm_classifier("cait_xxs36", "cait_xxs36_224")
xcit_tiny24 = _timm_classifier("xcit_tiny24", "xcit_tiny_24_p16_224")
xcit_small12 = _timm_classifier("xcit_small12", "xcit_small_12_p16_224")
xcit_medium24 = _timm_classifier("xcit_medium24", "xcit_medium_24_p16_224")
xcit_large24 = _timm_classifier("xcit_large24", "xcit_large_24_p16_224")


@MODELS.register_module()
def tiny_vit(img_size: int = 28, patch_size: int = 4, in_chans: int = 1, num_classes: int = 10,
             embed_dim: int = 96, depth: int = 6, num_heads: int = 3, mlp_ratio: float = 2.0,
             drop_path_rate: float = 0.1, pretrained: Optional[str] = None):
    """A small ViT for the embedded data (Fashion-MNIST 28×28 → 7×7 tokens at patch 4), fast on 2 CPU cores."""
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes, embed_dim=embed_dim,
        depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate, qkv_bias=True)
    return _finish(model, pretrained)


# ------------------------------------------------------------------------- class-attention families
def class_attention_forward(model, images, last_block):
    """``(logits, cls_attn (B,N))`` from one forward of ``model``: hooks the q/k projections of ``last_block.attn``
    (timm ``ClassAttn``: the CLS query over [CLS, N patch tokens]) and drops the CLS column."""
    attn = last_block.attn
    seen = {}
    handles = [attn.q.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o.detach())),
               attn.k.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o.detach()))]
    try:
        logits = model(images)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        q, k = seen["q"], seen["k"]  # (B,C), (B,T,C)
        b, t, c = k.shape
        heads = attn.num_heads
        q = q.reshape(b, heads, c // heads)
        k = k.reshape(b, t, heads, c // heads).transpose(1, 2)
        cls_attn = cls_row_attention(q, k, attn.scale)[:, 1:]
    return logits, cls_attn


@ATTENTION_FORWARDS.register(attention_key(Cait))
def _cait_forward_with_attention(model, images):
    return class_attention_forward(model, images, model.blocks_token_only[-1])


@ATTENTION_FORWARDS.register(attention_key(Xcit))
def _xcit_forward_with_attention(model, images):
    return class_attention_forward(model, images, model.cls_attn_blocks[-1])

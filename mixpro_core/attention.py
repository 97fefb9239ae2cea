"""CLS→patch attention of the last transformer block, captured in the same forward pass that produces the logits.

Fused attention (SDPA / flash) never materialises the attention matrix, and switching it off for the last block
would cost O(N²) memory. Only the CLS query row is needed: softmax(q_cls·Kᵀ·scale), which is O(N). For timm-style
ViTs we hook the last block's ``attn.qkv`` projection, take its output (already computed by the forward) and build
that row from it; every block keeps its fused kernel and the hook is removed afterwards.

Other model families plug in either by defining ``model.forward_with_attention(images)`` or by registering
``fn(model, images)`` for their class: ``@ATTENTION_FORWARDS.register(attention_key(ModelClass))``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from .registry import ATTENTION_FORWARDS


def attention_key(model_type: type) -> str:
    """The :data:`~mixpro_core.registry.ATTENTION_FORWARDS` name of a model class (``module.QualName``); a forward
    registered under it serves that class and its subclasses."""
    return f"{model_type.__module__}.{model_type.__qualname__}"


def cls_row_attention(q_cls: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """Head-averaged attention of one query per sample.

    q_cls (B,H,D), k (B,H,T,D) → (B,T) = mean_h softmax(q_cls·kᵀ·scale), computed in fp32 (autocast off, so a bf16 /
    fp16 training step does not round the attention label).
    """
    with torch.autocast(k.device.type, enabled=False):
        logits = torch.einsum("bhd,bhtd->bht", q_cls.float() * scale, k.float())
        return logits.softmax(dim=-1).mean(dim=1)


def cls_attention_from_qkv(qkv: torch.Tensor, num_heads: int, scale: float, num_prefix_tokens: int = 1,
                           q_norm: Optional[nn.Module] = None, k_norm: Optional[nn.Module] = None) -> torch.Tensor:
    """From a fused qkv projection output (B,T,3·H·D) to the CLS→patch attention (B, T − num_prefix_tokens).

    Token 0 is the CLS query; prefix tokens (CLS, distillation, registers) are dropped from the columns after the
    softmax, without renormalising (λ_attn = Σ(M·A)/ΣA normalises).
    """
    b, t, c3 = qkv.shape
    head_dim = c3 // (3 * num_heads)
    q, k, _ = qkv.float().reshape(b, t, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    with torch.autocast(qkv.device.type, enabled=False):
        if q_norm is not None:
            q = q_norm(q)
        if k_norm is not None:
            k = k_norm(k)
    return cls_row_attention(q[:, :, 0], k, scale)[:, num_prefix_tokens:]


def received_attention_from_qkv(qkv: torch.Tensor, num_heads: int, scale: float, num_prefix_tokens: int = 1,
                                q_norm: Optional[nn.Module] = None, k_norm: Optional[nn.Module] = None,
                                max_elements: int = 1 << 25) -> torch.Tensor:
    """From a fused qkv projection output (B,T,3·H·D) to the attention each patch token RECEIVES from the patch
    queries, (B, T − num_prefix_tokens): softmax(q·kᵀ·scale)[:, :, prefix:, prefix:] averaged over heads and query
    patches (SMMix's score; prefix rows and columns dropped after the softmax, no renormalisation). fp32, autocast off,
    no grad; built in query chunks of at most ``max_elements`` scores, so memory stays O(chunk·T)."""
    b, t, c3 = qkv.shape
    q, k, _ = qkv.detach().float().reshape(b, t, 3, num_heads, c3 // (3 * num_heads)).permute(2, 0, 3, 1, 4).unbind(0)
    with torch.no_grad(), torch.autocast(qkv.device.type, enabled=False):
        if q_norm is not None:
            q = q_norm(q)
        if k_norm is not None:
            k = k_norm(k)
        q = q[:, :, num_prefix_tokens:] * scale
        total = torch.zeros(b, num_heads, t - num_prefix_tokens, device=qkv.device)
        chunk = max(1, max_elements // max(1, b * num_heads * t))
        for start in range(0, q.shape[2], chunk):
            rows = (q[:, :, start:start + chunk] @ k.transpose(-2, -1)).softmax(dim=-1)
            total += rows[..., num_prefix_tokens:].sum(dim=2)
        return total.mean(dim=1) / q.shape[2]


def _has_cls_token(model: nn.Module) -> bool:
    return getattr(model, "cls_token", None) is not None and getattr(model, "global_pool", "token") == "token"


def _vit_forward_with_attention(model: nn.Module, images: torch.Tensor):
    """timm VisionTransformer-like: ``model.blocks[-1].attn`` with ``qkv``, ``num_heads``, ``scale``."""
    blocks = getattr(model, "blocks", None)
    attn = getattr(blocks[-1], "attn", None) if blocks is not None and len(blocks) else None
    if attn is None or not all(hasattr(attn, a) for a in ("qkv", "num_heads", "scale")):
        raise TypeError(f"{type(model).__name__} is not a ViT-like model (blocks[-1].attn with qkv, num_heads, "
                        f"scale); define forward_with_attention(images) on it or register one in ATTENTION_FORWARDS")
    if not _has_cls_token(model):
        return model(images), None
    captured = {}

    def keep_qkv(_module, _inputs, output):
        captured["qkv"] = output.detach()

    handle = attn.qkv.register_forward_hook(keep_qkv)
    try:
        logits = model(images)
    finally:
        handle.remove()
    with torch.no_grad():
        cls_attn = cls_attention_from_qkv(captured["qkv"], attn.num_heads, attn.scale,
                                          getattr(model, "num_prefix_tokens", 1),
                                          getattr(attn, "q_norm", None), getattr(attn, "k_norm", None))
    return logits, cls_attn


def forward_with_attention(model: nn.Module, images: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """One forward returning ``(logits (B,K), cls_attn (B,N) or None)``.

    ``cls_attn`` is the last block's CLS→patch attention, head-averaged and detached; None for models without a
    CLS token (they get area labels). The model is left unchanged (no hooks stay behind).
    """
    own = getattr(model, "forward_with_attention", None)
    if callable(own):
        return own(images)
    for klass in type(model).__mro__:
        key = attention_key(klass)
        if key in ATTENTION_FORWARDS:
            return ATTENTION_FORWARDS.get(key)(model, images)
    return _vit_forward_with_attention(model, images)


def has_cls_attention(model: nn.Module) -> bool:
    """Whether :func:`forward_with_attention` can give this model's CLS attention (False → area labels only): the
    model's own ``has_cls_attention`` where it declares one, else whether it is a timm-style model with a CLS token
    that pools by it (timm's VisionTransformer, CaiT, XCiT)."""
    flag = getattr(model, "has_cls_attention", None)
    if flag is not None:
        return bool(flag)
    return _has_cls_token(model)


def token_stride(model: nn.Module) -> Optional[int]:
    """Pixel size of the tokens :func:`forward_with_attention`'s ``cls_attn`` refers to (the mixing patch size): the
    model's own ``token_stride`` where it declares one, else a timm-style model's ``patch_embed.patch_size`` (timm's
    VisionTransformer, CaiT, XCiT); None when neither."""
    stride = getattr(model, "token_stride", None)
    if stride is not None:
        return stride
    size = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    return size if size is None or isinstance(size, int) else int(size[0])

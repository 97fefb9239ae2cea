"""TL-Align (Xiao et al., ICCV 2023, "Token-Label Alignment for Vision Transformers"): CutMix on the token grid whose
labels follow the tokens through every attention layer (docs/methods.md, "TL-Align").

Every token's label is ρ·ŷ_a + (1−ρ)·ŷ_b, so one scalar ρ per token carries it (CLS: λ; patches: 1 own / 0
partner). Each block maps ρ ← (Ā·ρ + ρ)/2, Ā the head-mean attention (detached, before attention dropout); the CLS
target is ρ_CLS·ŷ_a + (1−ρ_CLS)·ŷ_b. Ā·ρ is computed inside the fused attention: ρ is appended to every head's values
as one extra channel (:func:`forward_with_token_labels`), so no N×N attention is materialised. Backbones: timm
ViT / DeiT (``blocks[i].attn`` timm's ``Attention``, one CLS token, no attention dropout).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .labels import check_class_count, mixed_targets, soft_target_cross_entropy
from .method import Method, MethodResult
from .mixing import MixBatch, _box_batch, _check_images, _randint, sample_beta
from .registry import METHODS


def token_grid_cutmix(images: torch.Tensor, patch_size: int, alpha: float = 1.0,
                      generator: Optional[torch.Generator] = None) -> MixBatch:
    """TL-Align's mixing: one CutMix box on the token grid, pasted from the flipped batch (partner of i: B−1−i).

    λ ~ Beta(α,α), redrawn while λ == 1; on the gh×gw grid the box has sides ⌊gh·√(1−λ)⌋ × ⌊gw·√(1−λ)⌋ around a
    uniform integer centre, clipped (timm's ``rand_bbox`` on the grid); λ_area = 1 − box tokens / N, exactly. The box
    is whole tokens, so the batch is token-exact and its token mask (1 = own) is exact.
    """
    _check_images(images)
    b, _, h, w = images.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch_size={patch_size}")
    gh, gw = h // patch_size, w // patch_size
    lam = sample_beta(alpha, generator)
    while lam == 1.0:
        lam = sample_beta(alpha, generator)
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(gh * ratio), int(gw * ratio)
    cy, cx = _randint(gh, generator), _randint(gw, generator)
    y0, y1 = min(max(cy - cut_h // 2, 0), gh), min(max(cy + cut_h // 2, 0), gh)
    x0, x1 = min(max(cx - cut_w // 2, 0), gw), min(max(cx + cut_w // 2, 0), gw)
    partner = torch.arange(b - 1, -1, -1, device=images.device)
    box = tuple(v * patch_size for v in (y0, y1, x0, x1))
    pasted = images[partner][..., box[0]:box[1], box[2]:box[3]]
    return _box_batch(images, partner, pasted, box, patch_size, "tlalign", token_exact=True)


TIMM_ATTENTION = ("qkv", "num_heads", "q_norm", "k_norm", "attn_drop", "proj", "proj_drop")
"""Attributes of timm's ViT ``Attention`` that :func:`forward_with_token_labels` uses."""


def check_token_label_backbone(model: nn.Module) -> None:
    """ValueError unless ``model`` is a timm ViT/DeiT with one CLS token and no attention dropout."""
    blocks = getattr(model, "blocks", None)
    if not blocks or not all(all(hasattr(getattr(b, "attn", None), a) for a in TIMM_ATTENTION) for b in blocks):
        raise ValueError(f"TL-Align needs timm ViT/DeiT blocks (blocks[i].attn a timm Attention); "
                         f"{type(model).__name__} has not")
    if getattr(model, "cls_token", None) is None or getattr(model, "num_prefix_tokens", 1) != 1 or \
            getattr(model, "global_pool", "token") != "token":
        raise ValueError(f"TL-Align needs exactly one CLS token, pooled for the logits; {type(model).__name__} has "
                         f"num_prefix_tokens={getattr(model, 'num_prefix_tokens', None)}, "
                         f"global_pool={getattr(model, 'global_pool', None)!r}")
    dropped = [i for i, b in enumerate(blocks) if b.attn.attn_drop.p > 0]
    if dropped:
        raise ValueError(f"TL-Align propagates the labels with the attention before dropout, which the fused label "
                         f"channel cannot separate: blocks {dropped} have attention dropout > 0 (set attn_drop_rate=0, "
                         f"as DeiT does)")


def _attention_with_label_channel(attn: nn.Module, x: torch.Tensor, rho: torch.Tensor) -> Tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """timm ``Attention.forward`` on ``x`` (B,T,C) plus Ā·ρ (B,T) for token ratios ``rho`` (B,T): ρ rides as one
    extra value channel of every head in one ``F.scaled_dot_product_attention``; its output is averaged over heads
    and detached (the image path and its gradient are those of the plain attention)."""
    b, t, _ = x.shape
    heads = attn.num_heads
    head_dim = attn.qkv.out_features // (3 * heads)
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    q, k, v = attn.qkv(x).reshape(b, t, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    channel = rho.detach().to(v.dtype)[:, None, :, None].expand(b, heads, t, 1)
    out = F.scaled_dot_product_attention(q, k, torch.cat([v, channel], dim=-1))
    aligned = out[..., head_dim].detach().float().mean(dim=1)
    x = out[..., :head_dim].transpose(1, 2).reshape(b, t, heads * head_dim)
    x = attn.norm(x) if hasattr(attn, "norm") else x
    if gate is not None:
        x = x * gate
    return attn.proj_drop(attn.proj(x)), aligned


def forward_with_token_labels(model: nn.Module, images: torch.Tensor,
                              rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One forward of ``model`` (a timm ViT/DeiT, :func:`check_token_label_backbone`) returning (logits (B,K), ρ
    (B,T) after the last block), where every block updates the per-token ratios ``rho`` (B,T; CLS first) as
    ρ ← (Ā·ρ + ρ)/2 (fp32; the fixed ½/½ residual ignores drop path, as the official code does). The model's own
    forward runs; each block's attention is replaced for this call only."""
    blocks = list(model.blocks)
    state = {"rho": rho.float()}

    def replacement(attn):
        def forward(x, attn_mask=None, is_causal=False):
            if attn_mask is not None or is_causal:
                raise ValueError("TL-Align's label propagation does not support attention masks")
            out, aligned = _attention_with_label_channel(attn, x, state["rho"])
            state["rho"] = (aligned + state["rho"]) / 2
            return out
        return forward

    try:
        for block in blocks:
            block.attn.forward = replacement(block.attn)
        logits = model(images)
    finally:
        for block in blocks:
            block.attn.__dict__.pop("forward", None)
    return logits, state["rho"]


@METHODS.register("tlalign")
class TLAlign(Method):
    """TL-Align: :func:`token_grid_cutmix` on every batch, token ratios propagated through every block
    (:func:`forward_with_token_labels`), soft-target CE of the logits against ρ_CLS·ŷ_a + (1−ρ_CLS)·ŷ_b.

    ``alpha``: the Beta concentration of λ (official recipe 1.0). ``lam`` = ρ_CLS; logged: ``lam_gap`` =
    mean |ρ_CLS − λ_area|. No extra forward, no extra parameters; not with activation checkpointing (its recomputation
    would propagate the labels twice).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, smoothing: float = 0.1, alpha: float = 1.0,
                 patch_size: Optional[int] = None, grad_checkpointing: bool = False):
        super().__init__(num_classes, smoothing)
        check_token_label_backbone(backbone)
        if not patch_size:
            raise ValueError("TL-Align needs the backbone's patch size (its token_stride)")
        if grad_checkpointing:
            raise ValueError("TL-Align cannot run with grad_checkpointing: the recomputation would propagate the "
                             "token labels twice")
        if alpha <= 0:
            raise ValueError(f"TL-Align alpha must be > 0, got {alpha}")
        self.alpha, self.patch_size = alpha, patch_size

    def forward(self, backbone, images, labels, generator=None) -> MethodResult:
        batch = token_grid_cutmix(images, self.patch_size, self.alpha, generator)
        rho = torch.cat([batch.lam_area[:, None], batch.token_mask], dim=1)
        logits, rho = forward_with_token_labels(backbone, batch.images, rho)
        check_class_count(logits, self.num_classes, "TL-Align")
        lam = rho[:, 0]
        loss = soft_target_cross_entropy(logits, mixed_targets(labels, batch.partner, lam, self.num_classes,
                                                               self.smoothing))
        with torch.no_grad():
            stats = dict(lam_gap=(lam - batch.lam_area.float()).abs().mean())
        return MethodResult(loss, lam, stats)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, patch_size={self.patch_size}, smoothing={self.smoothing}"

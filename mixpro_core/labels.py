"""Label space: mixed targets, attention-based λ (TransMix, PAL) and the losses of each method (SPEC §1).

Notation: B samples, K classes, N patch tokens. ``labels`` are integer class ids (B,); ``partner`` (B,) the index of
each sample's mixing partner; ``cls_attn`` (B,N) the head-averaged CLS→patch attention of the last block (detached).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .mixing import MixBatch


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.1) -> torch.Tensor:
    """(B,) int → (B,K): one_hot·(1−s) + s/K."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be integer class ids of shape (B,), got shape {tuple(labels.shape)}")
    one_hot = F.one_hot(labels.long(), num_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / num_classes


def mixed_targets(labels: torch.Tensor, partner: torch.Tensor, lam, num_classes: int,
                  smoothing: float = 0.1) -> torch.Tensor:
    """(B,K) soft targets lam·ŷ + (1−lam)·ŷ[partner]; ``lam`` is (B,) or a scalar."""
    y = smooth_one_hot(labels, num_classes, smoothing)
    lam = torch.as_tensor(lam, dtype=y.dtype, device=y.device)
    lam = lam.view(-1, 1) if lam.dim() else lam
    return lam * y + (1.0 - lam) * y[partner]


def attention_lambda(token_mask: torch.Tensor, cls_attn: torch.Tensor) -> torch.Tensor:
    """(B,) Σ(M·A)/ΣA: the share of the CLS attention that falls on the sample's own tokens."""
    if token_mask.shape != cls_attn.shape:
        raise ValueError(f"token_mask {tuple(token_mask.shape)} and cls_attn {tuple(cls_attn.shape)} must have the "
                         f"same (B,N) shape (is mask/patch size consistent with the model's tokens?)")
    attn = cls_attn.float()
    return (token_mask.float() * attn).sum(1) / attn.sum(1).clamp_min(1e-12)


def progressive_factor(logits: torch.Tensor, area_targets: torch.Tensor) -> torch.Tensor:
    """(B,) α = cos_sim(softmax(logits), area_targets) — PAL's trust in the attention label."""
    return F.cosine_similarity(logits.float().softmax(dim=1), area_targets.float(), dim=1)


def area_lambda(batch: MixBatch) -> torch.Tensor:
    """(B,) the area λ: each sample's own-pixel fraction."""
    return batch.lam_area


def transmix_lambda(batch: MixBatch, cls_attn: Optional[torch.Tensor]) -> torch.Tensor:
    """(B,) TransMix: (λ_area + λ_attn)/2 on CutMix batches; λ_area on other kinds or without attention."""
    if batch.kind != "cutmix" or cls_attn is None:
        return batch.lam_area
    if batch.token_mask is None:
        raise ValueError("TransMix needs the CutMix token mask: build the batch with cutmix(..., patch_size=p)")
    return (batch.lam_area + attention_lambda(batch.token_mask, cls_attn)) / 2


def pal_lambda(batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor], labels: torch.Tensor,
               num_classes: int, smoothing: float = 0.1, detach_factor: bool = False) -> torch.Tensor:
    """(B,) Progressive Attention Labeling: α·λ_attn + (1−α)·λ_area on MaskMix batches; λ_area elsewhere.

    α = cos_sim(softmax(logits), λ_area·ŷ + (1−λ_area)·ŷ[partner]). As in the official code the softmax inside α
    keeps its gradient unless ``detach_factor``; the attention is detached by its producer.
    """
    if batch.kind != "maskmix" or cls_attn is None:
        return batch.lam_area
    area = mixed_targets(labels, batch.partner, batch.lam_area, num_classes, smoothing)
    alpha = progressive_factor(logits.detach() if detach_factor else logits, area)
    return alpha * attention_lambda(batch.token_mask, cls_attn) + (1 - alpha) * batch.lam_area


# ----------------------------------------------------------------------------------------------- losses
def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Scalar mean over the batch of −Σ_k t_k·log softmax(logits)_k."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def mixed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor,
                        smoothing: float = 0.0) -> torch.Tensor:
    """Scalar mean(lam·CE(logits, y) + (1−lam)·CE(logits, y[partner])), CE with optional label smoothing."""
    logits = logits.float()
    ce_own = F.cross_entropy(logits, labels, reduction="none", label_smoothing=smoothing)
    ce_partner = F.cross_entropy(logits, labels[partner], reduction="none", label_smoothing=smoothing)
    return (lam * ce_own + (1 - lam) * ce_partner).mean()


# ----------------------------------------------------------------------------------------------- policies
class LabelPolicy:
    """How a method turns a mixed batch into a loss. One call, no method branches in the training loop.

    ``lam(batch, logits, cls_attn, labels)`` gives the per-sample λ (B,) the policy uses;
    ``loss(batch, logits, cls_attn, labels)`` the scalar training loss. ``needs_attention`` tells the caller
    whether to capture the CLS attention at all.
    """

    needs_attention = False

    def __init__(self, num_classes: int, smoothing: float = 0.1):
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes, self.smoothing = num_classes, smoothing

    def lam(self, batch: MixBatch, logits, cls_attn, labels) -> torch.Tensor:
        return area_lambda(batch)

    def loss(self, batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor],
             labels: torch.Tensor) -> torch.Tensor:
        lam = self.lam(batch, logits, cls_attn, labels)
        return soft_target_cross_entropy(
            logits, mixed_targets(labels, batch.partner, lam, self.num_classes, self.smoothing))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes}, smoothing={self.smoothing})"


class AreaLabels(LabelPolicy):
    """Baseline Mixup/CutMix/MaskMix labels: soft targets weighted by the area λ."""


class TransMixLabels(LabelPolicy):
    """TransMix: on CutMix batches λ = (λ_area + λ_attn)/2; soft targets with smoothing."""

    needs_attention = True

    def lam(self, batch, logits, cls_attn, labels):
        return transmix_lambda(batch, cls_attn)


class PALLabels(LabelPolicy):
    """MixPro's label space. MaskMix batches: PAL λ and hard-label mixed CE (no smoothing unless
    ``keep_smoothing``); other batches: soft-target CE with the area λ and smoothing (the official loss)."""

    needs_attention = True

    def __init__(self, num_classes: int, smoothing: float = 0.1, detach_factor: bool = False,
                 keep_smoothing: bool = False):
        super().__init__(num_classes, smoothing)
        self.detach_factor, self.keep_smoothing = detach_factor, keep_smoothing

    def lam(self, batch, logits, cls_attn, labels):
        return pal_lambda(batch, logits, cls_attn, labels, self.num_classes, self.smoothing, self.detach_factor)

    def loss(self, batch, logits, cls_attn, labels):
        if batch.kind != "maskmix":
            return super().loss(batch, logits, cls_attn, labels)
        lam = self.lam(batch, logits, cls_attn, labels)
        return mixed_cross_entropy(logits, labels, batch.partner, lam,
                                   self.smoothing if self.keep_smoothing else 0.0)

    def __repr__(self) -> str:
        return (f"PALLabels(num_classes={self.num_classes}, smoothing={self.smoothing}, "
                f"detach_factor={self.detach_factor}, keep_smoothing={self.keep_smoothing})")

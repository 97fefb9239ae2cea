"""Label space: mixed targets, attention-based λ (TransMix, PAL) and the losses of each method (docs/methods.md,
"Attention for labelling", "TransMix", "PAL"). A label policy is one call, ``policy(batch, logits, cls_attn, labels)``
→ :class:`LabelResult` (loss, λ (B,), logged statistics); policies are registered in ``LABEL_POLICIES``.

Notation: B samples, K classes, N patch tokens. ``labels`` are integer class ids (B,); ``partner`` (B,) the index of
each sample's mixing partner; ``cls_attn`` (B,N) the head-averaged CLS→patch attention of the last block (detached).
Which batches get attention labels is said by the batch itself (``MixBatch.token_mask`` / ``token_exact``), never by
the name of the mixer that made it, so a new mixer needs no change here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .mixing import MixBatch
from .registry import LABEL_POLICIES


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
    """(B,) Σ(M·A)/ΣA: the share of the CLS attention that falls on the sample's own tokens (fp32, also under
    autocast)."""
    if token_mask.shape != cls_attn.shape:
        raise ValueError(f"token_mask {tuple(token_mask.shape)} and cls_attn {tuple(cls_attn.shape)} must have the "
                         f"same (B,N) shape (is mask/patch size consistent with the model's tokens?)")
    with torch.autocast(cls_attn.device.type, enabled=False):
        attn = cls_attn.float()
        return (token_mask.float() * attn).sum(1) / attn.sum(1).clamp_min(1e-12)


def progressive_factor(logits: torch.Tensor, area_targets: torch.Tensor) -> torch.Tensor:
    """(B,) α = cos_sim(softmax(logits), area_targets) — PAL's trust in the attention label."""
    return F.cosine_similarity(logits.float().softmax(dim=1), area_targets.float(), dim=1)


def area_lambda(batch: MixBatch) -> torch.Tensor:
    """(B,) the area λ: each sample's own-pixel fraction."""
    return batch.lam_area


def transmix_lambda(batch: MixBatch, cls_attn: Optional[torch.Tensor]) -> torch.Tensor:
    """(B,) TransMix: (λ_area + λ_attn)/2 on batches with a token mask (CutMix, ResizeMix, MaskMix with a
    ``patch_size``); λ_area on the others (Mixup, R-Mix, no mixing) or without attention."""
    if batch.token_mask is None or cls_attn is None:
        return batch.lam_area
    return (batch.lam_area + attention_lambda(batch.token_mask, cls_attn)) / 2


def attention_entropy(cls_attn: torch.Tensor) -> torch.Tensor:
    """(B,) entropy in nats of the CLS attention over the N patch tokens, renormalised to sum to 1
    (0 = all on one token, log N = uniform); fp32."""
    with torch.autocast(cls_attn.device.type, enabled=False):
        p = cls_attn.float()
        p = p / p.sum(1, keepdim=True).clamp_min(1e-12)
        return -(p * p.clamp_min(1e-12).log()).sum(1)


def pal_lambda(batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor], labels: torch.Tensor,
               num_classes: int, smoothing: float = 0.1, detach_factor: bool = False) -> torch.Tensor:
    """(B,) Progressive Attention Labeling: α·λ_attn + (1−α)·λ_area on token-exact batches (``batch.token_exact``:
    MaskMix, aligned ResizeMix); λ_area elsewhere or without attention (:func:`pal_factor_and_lambda`)."""
    if not batch.token_exact or cls_attn is None:
        return batch.lam_area
    return pal_factor_and_lambda(batch, logits, cls_attn, labels, num_classes, smoothing, detach_factor)[1]


def pal_factor_and_lambda(batch: MixBatch, logits: torch.Tensor, cls_attn: torch.Tensor, labels: torch.Tensor,
                          num_classes: int, smoothing: float = 0.1,
                          detach_factor: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """(α (B,), PAL λ (B,) = α·λ_attn + (1−α)·λ_area) for a token-exact batch with attention — the one computation
    of PAL's λ (:class:`PALLabels` and :func:`pal_lambda` call it).

    α = cos_sim(softmax(logits), λ_area·ŷ + (1−λ_area)·ŷ[partner]). As in the official code the softmax inside α
    keeps its gradient unless ``detach_factor``; the attention is detached by its producer.
    """
    area = mixed_targets(labels, batch.partner, batch.lam_area, num_classes, smoothing)
    alpha = progressive_factor(logits.detach() if detach_factor else logits, area)
    return alpha, alpha * attention_lambda(batch.token_mask, cls_attn) + (1 - alpha) * batch.lam_area


def check_class_count(logits: torch.Tensor, num_classes: int, where: str) -> None:
    """ValueError naming both counts when ``logits`` (B,K') do not have the ``num_classes`` K of ``where``."""
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"{where} has num_classes={num_classes} but the model's logits have "
                         f"{logits.shape[-1] if logits.dim() else 0} classes (shape {tuple(logits.shape)}): "
                         f"set the same class count in both")


# ----------------------------------------------------------------------------------------------- losses
def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Scalar mean over the batch of −Σ_k t_k·log softmax(logits)_k (``F.cross_entropy`` with probabilities, fp32)."""
    return F.cross_entropy(logits.float(), targets.float())


def mixed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, partner: torch.Tensor, lam,
                        smoothing: float = 0.0) -> torch.Tensor:
    """Scalar mean(lam·CE(logits, y) + (1−lam)·CE(logits, y[partner])), CE with optional label smoothing.

    CE is linear in the target, so this is exactly the soft CE against ``mixed_targets(labels, partner, lam)``
    (PAL's hard-label loss is the soft CE of the unsmoothed mixed target)."""
    return soft_target_cross_entropy(logits, mixed_targets(labels, partner, lam, logits.shape[-1], smoothing))


POLICY_STATS = {"pal_alpha": "mean α", "lam_gap": "mean |λ − λ_area|", "pal_lam_gap": "PAL's |λ − λ_area| (unused)",
                "attn_entropy": "attention entropy (nats)"}
"""Every key :attr:`LabelResult.stats` may hold, with what it is (for logs, curves and reports)."""


@dataclass(frozen=True)
class LabelResult:
    """One step's labels: ``loss`` the scalar training loss, ``lam`` (B,) the per-sample λ it used, ``stats`` detached
    0-d device tensors to log (keys from :data:`POLICY_STATS`; no host synchronisation).

    ``stats``, for policies that read the attention and a step that has it: ``attn_entropy`` (mean
    :func:`attention_entropy`, nats, every such step) and, on batches where the policy's λ may differ from the area λ,
    ``lam_gap`` = mean |λ_policy − λ_area| (plus ``pal_alpha`` = mean α for PAL). Keys are absent on other steps, so a
    logged average runs over the steps where the quantity exists."""

    loss: torch.Tensor
    lam: torch.Tensor
    stats: Dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------- policies
class LabelPolicy:
    """How a method turns a mixed batch into a loss. One call, no method branches in the training loop:
    ``policy(batch, logits, cls_attn, labels)`` → :class:`LabelResult` (loss, λ and statistics computed together).
    ``needs_attention`` tells the caller whether to capture the CLS attention at all.
    """

    needs_attention = False

    def __init__(self, num_classes: int, smoothing: float = 0.1):
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes, self.smoothing = num_classes, smoothing

    def __call__(self, batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor],
                 labels: torch.Tensor) -> LabelResult:
        """The step's :class:`LabelResult`; ValueError when the logits' class count is not the policy's."""
        check_class_count(logits, self.num_classes, repr(self))
        lam, stats = self.lam_and_stats(batch, logits, cls_attn, labels)
        return LabelResult(self._loss(batch, logits, cls_attn, labels, lam), lam, stats)

    def lam(self, batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor],
            labels: torch.Tensor) -> torch.Tensor:
        """(B,) the λ this policy trains with on ``batch`` (e.g. for pictures of a trained model's labels)."""
        return self.lam_and_stats(batch, logits, cls_attn, labels)[0]

    def lam_and_stats(self, batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor],
                      labels: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """(λ (B,), :attr:`LabelResult.stats`): the one place each policy computes its λ."""
        lam = self._lam(batch, cls_attn)
        return lam, self._stats(batch, cls_attn, lam)

    def _loss(self, batch: MixBatch, logits: torch.Tensor, cls_attn: Optional[torch.Tensor], labels: torch.Tensor,
              lam: torch.Tensor) -> torch.Tensor:
        """Soft-target CE (smoothed) against the targets of ``lam``."""
        return soft_target_cross_entropy(logits, mixed_targets(labels, batch.partner, lam, self.num_classes,
                                                               self.smoothing))

    def _lam(self, batch: MixBatch, cls_attn: Optional[torch.Tensor]) -> torch.Tensor:
        return area_lambda(batch)

    def _stats(self, batch: MixBatch, cls_attn: Optional[torch.Tensor], lam: torch.Tensor) -> Dict[str, torch.Tensor]:
        """:attr:`LabelResult.stats` of a step whose λ is ``lam`` (a few (B,N) operations, no forward)."""
        if not self.needs_attention or cls_attn is None:
            return {}
        with torch.no_grad():
            out = dict(attn_entropy=attention_entropy(cls_attn).mean())
            if self._attention_applies(batch):
                out["lam_gap"] = (lam.float() - batch.lam_area.float()).abs().mean()
            return out

    def _attention_applies(self, batch: MixBatch) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes}, smoothing={self.smoothing})"


@LABEL_POLICIES.register("AreaLabels")
class AreaLabels(LabelPolicy):
    """Baseline Mixup/CutMix/MaskMix labels: soft targets weighted by the area λ."""


@LABEL_POLICIES.register("TransMixLabels")
class TransMixLabels(LabelPolicy):
    """TransMix: on batches with a token mask λ = (λ_area + λ_attn)/2; soft targets with smoothing."""

    needs_attention = True

    def _lam(self, batch, cls_attn):
        return transmix_lambda(batch, cls_attn)

    def _attention_applies(self, batch):
        return batch.token_mask is not None


@LABEL_POLICIES.register("PALLabels")
class PALLabels(LabelPolicy):
    """MixPro's label space. Token-exact batches (MaskMix) with attention: PAL λ and hard-label mixed CE (no
    smoothing unless ``keep_smoothing``); other batches, and every batch without attention (models without a CLS
    token): soft-target CE with the area λ and smoothing (the official loss).

    Ablation switches, each alone (docs/methods.md, "PAL"): ``lam_source='area'`` uses the area λ instead of the PAL
    λ on the token-exact batches while keeping their loss (hard-label CE unless ``keep_smoothing``);
    ``keep_smoothing=True`` gives them the smoothed soft-target CE of the other batches; ``detach_factor=True``
    stops the gradient through α. ``lam_source='area', keep_smoothing=True`` is exactly :class:`AreaLabels`.
    """

    needs_attention = True
    LAM_SOURCES = ("pal", "area")

    def __init__(self, num_classes: int, smoothing: float = 0.1, detach_factor: bool = False,
                 keep_smoothing: bool = False, lam_source: str = "pal"):
        super().__init__(num_classes, smoothing)
        if lam_source not in self.LAM_SOURCES:
            raise ValueError(f"PALLabels lam_source must be one of {self.LAM_SOURCES}, got {lam_source!r}")
        self.detach_factor, self.keep_smoothing, self.lam_source = detach_factor, keep_smoothing, lam_source

    def _applies(self, batch: MixBatch, cls_attn: Optional[torch.Tensor]) -> bool:
        return batch.token_exact and cls_attn is not None

    def lam_and_stats(self, batch, logits, cls_attn, labels):
        if not self._applies(batch, cls_attn):
            return super().lam_and_stats(batch, logits, cls_attn, labels)
        alpha, pal = pal_factor_and_lambda(batch, logits, cls_attn, labels, self.num_classes, self.smoothing,
                                           self.detach_factor or self.lam_source == "area")
        lam = batch.lam_area if self.lam_source == "area" else pal
        with torch.no_grad():  # with lam_source='area' the used λ is λ_area: log the gap PAL's λ would have had
            stats = dict(attn_entropy=attention_entropy(cls_attn).mean(), pal_alpha=alpha.mean())
            gap = (pal.float() - batch.lam_area.float()).abs().mean()
            stats["pal_lam_gap" if self.lam_source == "area" else "lam_gap"] = gap
        return lam, stats

    def _loss(self, batch, logits, cls_attn, labels, lam):
        if not self._applies(batch, cls_attn):
            return super()._loss(batch, logits, cls_attn, labels, lam)
        return mixed_cross_entropy(logits, labels, batch.partner, lam, self.smoothing if self.keep_smoothing else 0.0)

    def __repr__(self) -> str:
        return (f"PALLabels(num_classes={self.num_classes}, smoothing={self.smoothing}, "
                f"detach_factor={self.detach_factor}, keep_smoothing={self.keep_smoothing}, "
                f"lam_source={self.lam_source!r})")


def build_label_policy(cfg: Optional[dict], num_classes: int, smoothing: float = 0.1) -> LabelPolicy:
    """``dict(type='AreaLabels' | 'TransMixLabels' | 'PALLabels' | <registered>, **options)`` → the policy
    (None → AreaLabels); option names are checked before the constructor runs."""
    return LABEL_POLICIES.build(cfg or dict(type="AreaLabels"), defaults=dict(num_classes=num_classes,
                                                                              smoothing=smoothing),
                                reserved=("num_classes", "smoothing"))

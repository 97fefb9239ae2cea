"""The method contract: one training method = one :class:`Method` module, called once per training step.

``method(backbone, images, labels, generator) -> MethodResult(loss, lam (B,), stats)``. The method owns everything
it needs: its image mixing, any extra forward pass (a no-grad clean pass, ...), extra parameters (``nn.Module``
children, so checkpoints, EMA, DDP and the optimiser see them under ``method.*``), per-token label state and its
loss terms. The classifier (``classification.models.MixClassifier``) only draws the step's generator and calls it.

Adding a method is one file in ``mixpro_core`` (imported by ``mixpro_core/__init__.py``)::

    @METHODS.register("mymethod")
    class MyMethod(Method):
        def __init__(self, backbone, num_classes, smoothing=0.1, alpha=1.0):  # context args, then config options
            super().__init__(num_classes, smoothing)
            ...                       # inspect backbone, build extra nn.Modules; never register backbone itself
        def forward(self, backbone, images, labels, generator=None) -> MethodResult:
            ...                       # all draws from ``generator``; check_class_count(logits, self.num_classes, ...)

A method that reads per-sample inputs besides the labels (TokenMix's teacher label maps) names them in
``EXTRAS`` and takes ``forward(..., extras={name: (B, ...) tensor})``: the classifier passes the training batch's
``data_samples`` entries of those names (``classification.data.label_maps``), and refuses a batch that lacks one
(:meth:`Method.missing_extras_message`). A method without ``EXTRAS`` is called without ``extras``.

The config selects it as ``model = dict(method=dict(type='mymethod', alpha=1.0), smoothing=0.1, ...)``;
:func:`build_method` passes the context values a constructor takes by name: ``backbone``, ``num_classes``,
``smoothing``, ``patch_size`` (the backbone's token stride), ``mix_defaults``, ``grad_checkpointing``. Without
``method`` the classifier builds :class:`ScheduleMethod` from the older keys ``mix`` / ``label_policy`` /
``token_mixup`` (every config before TL-Align uses it). Semantics of each method: docs/methods.md.
"""
from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.nn import functional as F

from .attention import forward_with_attention, has_cls_attention, token_stride
from .labels import AreaLabels, build_label_policy, check_class_count, soft_target_cross_entropy
from .registry import METHODS, call_with_options
from .schedule import build_schedule, check_mix_defaults
from .tokenmixup import build_token_mixup

CONTEXT_ARGS = ("backbone", "num_classes", "smoothing", "patch_size", "mix_defaults", "grad_checkpointing")
"""Constructor arguments :func:`build_method` fills from the classifier, never from the config's method dict."""


@dataclass(frozen=True)
class MethodResult:
    """One training step of a method.

    loss:  0-d training loss (what the optimiser minimises).
    lam:   (B,) per-sample weight of each sample's own label in its main (CLS) target: λ_area for area labels, the
           attention λ for TransMix / PAL, ρ_CLS for TL-Align, (N − s²)/N for SMMix; the area λ under HTM (whose
           targets mix up to four labels).
    stats: detached 0-d tensors to log (no host synchronisation); names never contain 'loss' (mmengine sums those).
    """

    loss: torch.Tensor
    lam: torch.Tensor
    stats: Dict[str, torch.Tensor]


class Method(nn.Module, abc.ABC):
    """Base of every training method (see the module docstring). ``num_classes`` K, ``smoothing`` s of the targets.
    A subclass without ``forward`` cannot be built (abstract)."""

    EXTRAS: Tuple[str, ...] = ()
    """Names of the per-sample batch inputs ``forward`` reads from its ``extras`` argument (none by default)."""

    def __init__(self, num_classes: int, smoothing: float = 0.1):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes, self.smoothing = num_classes, smoothing

    @abc.abstractmethod
    def forward(self, backbone: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> MethodResult:
        """One training step of the method on ``images`` (B,C,H,W) with integer ``labels`` (B,)."""

    def missing_extras_message(self, missing: Sequence[str]) -> str:
        """The one-line refusal of a training batch without the ``EXTRAS`` named in ``missing``."""
        return (f"{type(self).__name__} reads {', '.join(missing)} from each training batch, which the training "
                f"dataset does not give")


@METHODS.register("schedule")
class ScheduleMethod(Method):
    """Image mixing schedule + label policy (+ TokenMixup): Mixup, CutMix, ResizeMix, MaskMix, R-Mix, RL-Mix with
    AreaLabels / TransMixLabels / PALLabels (TransMix, MixPro and its ablations), HTM / VTM.

    One step: the schedule mixes the batch (``mix``, :func:`~mixpro_core.build_schedule`, ``mix_defaults`` as there),
    one forward of the mixed images that also yields the last block's CLS attention when the policy reads it
    (TokenMixup's HTM / VTM attached for that forward only), then the policy's :class:`~mixpro_core.LabelResult` —
    or, with HTM, soft-target CE against HTM's targets + λ_sn·ScoreNet CE (HTM starts from the area targets, so it
    needs AreaLabels). The schedule's state (RL-Mix) and the ScoreNets are children (``mixer.*``, ``token_mixup.*``).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, smoothing: float = 0.1, mix: Optional[list] = None,
                 label_policy: Optional[dict] = None, token_mixup=None, patch_size: Optional[int] = None,
                 mix_defaults: Optional[Mapping[str, Any]] = None, grad_checkpointing: bool = False):
        super().__init__(num_classes, smoothing)
        check_mix_defaults(mix_defaults or {})
        self.mix_defaults = dict(patch_size=patch_size, num_classes=num_classes, **(mix_defaults or {}))
        self.mixer = build_schedule(mix, self.mix_defaults)
        self.policy = build_label_policy(label_policy, num_classes, smoothing)
        self.use_attention = self.policy.needs_attention and has_cls_attention(backbone)
        if self.policy.needs_attention and not self.use_attention:
            warnings.warn(f"{type(backbone).__name__} has no CLS token: {type(self.policy).__name__} falls back to "
                          f"area labels", stacklevel=2)
        self.token_mixup = build_token_mixup(backbone, token_mixup, num_classes, smoothing)
        if len(self.token_mixup.horizontal) and type(self.policy) is not AreaLabels:
            raise ValueError(f"token_mixup HTM mixes the area targets of the batch inside the forward; it cannot be "
                             f"combined with {type(self.policy).__name__} (whose λ comes from the attention after the "
                             f"forward): use label_policy=dict(type='AreaLabels')")
        if self.use_attention and any(v.layer == len(backbone.blocks) - 1 for v in self.token_mixup.vertical):
            raise ValueError(f"token_mixup VTM at the last block adds keys to the attention that "
                             f"{type(self.policy).__name__} reads its CLS attention from: apply VTM to an earlier "
                             f"block")
        if grad_checkpointing and self.token_mixup.active:
            raise ValueError("token_mixup cannot run with grad_checkpointing: the recomputation would replay its hooks")

    def forward(self, backbone, images, labels, generator=None) -> MethodResult:
        batch = self.mixer(images, labels, backbone, generator)
        with self.token_mixup.feed(batch, labels) as context:
            if self.use_attention:
                logits, cls_attn = forward_with_attention(backbone, batch.images)
            else:
                logits, cls_attn = backbone(batch.images), None
        htm = self.token_mixup.result(context)  # None without HTM
        if htm is None:
            result = self.policy(batch, logits, cls_attn, labels)
            loss, lam, stats = result.loss, result.lam, dict(result.stats)
        else:  # HTM's targets replace the policy's (area) labels; its ScoreNet loss is added
            check_class_count(logits, self.num_classes, "token_mixup HTM")
            loss = soft_target_cross_entropy(logits, htm.targets) + htm.scorenet
            lam, stats = batch.lam_area, dict(scorenet=htm.scorenet.detach(), htm_mixed=htm.mixed)
        return MethodResult(loss, lam, {**batch.stats, **stats})


def kl_to_soft_target(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """0-d KL(softmax(target_logits) ‖ softmax(logits)) averaged over the batch (``KLDivLoss(reduction='batchmean')``
    of log_softmax(logits) against softmax(target_logits)); fp32."""
    return F.kl_div(F.log_softmax(logits.float(), dim=1), F.softmax(target_logits.float(), dim=1),
                    reduction="batchmean")


def build_method(cfg: Optional[Mapping[str, Any]], backbone: nn.Module, num_classes: int, smoothing: float = 0.1,
                 mix_defaults: Optional[Mapping[str, Any]] = None, grad_checkpointing: bool = False) -> Method:
    """``dict(type=<registered name>, **options)`` → the :class:`Method`; the context values (:data:`CONTEXT_ARGS`)
    go to constructors that take them and may not be set by the config. ValueError for an unknown type or key."""
    name, factory, options = METHODS.split(cfg)
    defaults = dict(backbone=backbone, num_classes=num_classes, smoothing=smoothing,
                    patch_size=token_stride(backbone), mix_defaults=mix_defaults,
                    grad_checkpointing=grad_checkpointing)
    return call_with_options(factory, options, f"method ({name})", defaults, reserved=CONTEXT_ARGS)

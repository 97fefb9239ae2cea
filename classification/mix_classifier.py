"""The mmengine model of every classification run: backbone + mix schedule + label policy, one code path.

``loss`` mode: mix on the device with :class:`mixpro_core.MixSchedule`, one forward that also yields the CLS
attention when the label policy needs it, then ``policy.loss``. No method-specific branches: the method is the
(schedule, policy) pair named in the config.
"""
from __future__ import annotations

from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS

import mixpro_core
from mixpro_core import MixSchedule, forward_with_attention, has_cls_attention

LABEL_POLICIES = {cls.__name__: cls for cls in (mixpro_core.AreaLabels, mixpro_core.TransMixLabels,
                                                mixpro_core.PALLabels)}


def _build_policy(cfg: dict, num_classes: int, smoothing: float) -> mixpro_core.LabelPolicy:
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in LABEL_POLICIES:
        raise ValueError(f"label_policy.type must be one of {sorted(LABEL_POLICIES)}, got {kind!r}")
    try:
        return LABEL_POLICIES[kind](num_classes=num_classes, smoothing=smoothing, **cfg)
    except TypeError as err:
        raise ValueError(f"label_policy ({kind}): unknown key in {sorted(cfg)}: {err}") from None


def _build_schedule(cfg: Optional[dict], token_stride: int) -> MixSchedule:
    cfg = dict(cfg or {})
    cfg.setdefault("patch_size", token_stride)
    try:
        return MixSchedule(**cfg)
    except TypeError as err:
        raise ValueError(f"mix: unknown key in {sorted(cfg)}: {err}") from None


@MODELS.register_module()
class MixClassifier(BaseModel):
    """Classifier trained with a mixing method.

    Args:
        backbone: config of a registered classifier factory (``classification.models``), e.g.
            ``dict(type='deit_small', drop_path_rate=0.1)``.
        num_classes: K.
        mix: :class:`MixSchedule` arguments (``patch_size`` defaults to the backbone's ``token_stride``);
            None or all alphas 0 → no mixing.
        label_policy: ``dict(type='AreaLabels' | 'TransMixLabels' | 'PALLabels', **options)``.
        smoothing: label smoothing s of the soft targets.
        grad_checkpointing: activation checkpointing of the backbone blocks.
    """

    def __init__(self, backbone: dict, num_classes: int, mix: Optional[dict] = None,
                 label_policy: Optional[dict] = None, smoothing: float = 0.1, grad_checkpointing: bool = False,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        backbone.setdefault("num_classes", num_classes)
        self.backbone = MODELS.build(backbone)
        self.num_classes = num_classes
        self.token_stride = getattr(self.backbone, "token_stride", None)
        self.schedule = _build_schedule(mix, self.token_stride)
        self.policy = _build_policy(label_policy or dict(type="AreaLabels"), num_classes, smoothing)
        self.use_attention = self.policy.needs_attention and has_cls_attention(self.backbone)
        if self.policy.needs_attention and not self.use_attention:
            print_log(f"{type(self.backbone).__name__} has no CLS token: {type(self.policy).__name__} falls back "
                      f"to area labels", logger="current")
        if grad_checkpointing:
            self.backbone.set_grad_checkpointing(True)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None, mode: str = "tensor"):
        """inputs (B,C,H,W); data_samples (B,) integer labels. Modes: 'loss' → dict(loss), 'predict' → a list with
        one dict(logits (B,K), labels (B,)) per batch, 'tensor' → logits."""
        if mode == "loss":
            return self.loss(inputs, data_samples)
        logits = self.backbone(inputs)
        if mode == "predict":
            return [dict(logits=logits.float(), labels=data_samples)]
        if mode == "tensor":
            return logits
        raise ValueError(f"unknown mode {mode!r}: use 'loss', 'predict' or 'tensor'")

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        batch = self.schedule(inputs)
        if self.use_attention:
            logits, cls_attn = forward_with_attention(self.backbone, batch.images)
        else:
            logits, cls_attn = self.backbone(batch.images), None
        return dict(loss=self.policy.loss(batch, logits, cls_attn, labels))

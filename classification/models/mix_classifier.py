"""The mmengine model of every classification run: backbone + mix schedule + token mixup + label policy.

``loss`` mode, one code path: mix on the device (a :class:`mixpro_core.MixSchedule`, every mixer called
``mixer(images, labels, model, generator)``), one forward that also yields the CLS attention when the label policy
needs it (TokenMixup's HTM/VTM attached for that forward only), then one label call: the policy's
:class:`mixpro_core.LabelResult` (loss, logged statistics) or, with HTM, its :class:`mixpro_core.TokenMixupResult`
(targets, ScoreNet loss). The method is the config's (schedule, token mixup, policy) triple (docs/methods.md, "Method
schedule"). Step ``t``'s mixing on rank ``r`` is seeded by ``(mix_seed, t, r)``, ``t`` the checkpointed buffer
``mix_step``: a resumed run mixes exactly as an uninterrupted one, in any training loop. A non-finite loss is stopped
by the optimiser wrapper (:mod:`classification.engine.optim_wrapper`), not here."""
from __future__ import annotations

import warnings
from typing import Optional

import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS

import mixpro_core
from mixpro_core import (build_label_policy, build_schedule, build_token_mixup, check_mix_defaults, check_options,
                         forward_with_attention, has_cls_attention, soft_target_cross_entropy)


def _build_backbone(cfg: dict, num_classes: int):
    cfg = dict(cfg)
    cfg.setdefault("num_classes", num_classes)
    name = cfg.get("type")
    factory = MODELS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ValueError(f"model.backbone.type {name!r} is not a registered model")
    check_options(factory, [k for k in cfg if k != "type"], f"model.backbone ({name})")
    return MODELS.build(cfg)


@MODELS.register_module()
class MixClassifier(BaseModel):
    """Classifier trained with a mixing method.

    Args:
        backbone: config of a registered classifier factory (``classification.models``), e.g.
            ``dict(type='deit_small', drop_path_rate=0.1)``.
        num_classes: K.
        mix: the schedule, a list of registered mixers with their probabilities
            (:func:`mixpro_core.build_schedule`): e.g. MixPro's ``[dict(type='maskmix', prob=0.5, alpha=1.0),
            dict(type='cutmix', prob=0.25, alpha=1.0), dict(type='mixup', prob=0.25, alpha=0.8)]``; R-Mix is
            ``[dict(type='rmix', prob=1.0, alpha=1.0, grid=None)]`` (saliency from one extra input-gradient pass; its
            λ_eff is an area λ: use AreaLabels), RL-Mix ``dict(type='rlmix', ...)`` (:class:`mixpro_core.RLMixer`,
            needs ``pip install .[rlmix]``; its policy is saved in the checkpoints, its mean reward / q are logged as
            ``rlmix_reward`` / ``rlmix_q``). None or [] → no mixing.
        label_policy: ``dict(type='AreaLabels' | 'TransMixLabels' | 'PALLabels', **options)``.
        smoothing: label smoothing s of the soft targets.
        grad_checkpointing: activation checkpointing of the backbone blocks.
        mix_seed: base seed of the per-step mixing generator.
        mix_defaults: options given to every mixer of ``mix`` that takes them unless its entry sets them, e.g. the
            model's MaskMix cell size ``dict(mask_size=32)``; ``patch_size`` defaults to the backbone's
            ``token_stride`` and ``num_classes`` to K.
        token_mixup: TokenMixup inside the backbone (``mixpro_core.build_token_mixup``): one dict or a list of
            ``dict(type='htm', layer=2, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None)`` /
            ``dict(type='vtm', layer=2, kappa=80)``; ``layer`` counts backbone blocks from 0. HTM starts from the area
            targets of the image-mixed batch, so it needs AreaLabels; the loss is soft-target CE against HTM's
            targets + λ_sn·ScoreNet CE. The ScoreNets are parameters of this model (``token_mixup.*``), outside
            ``backbone.*``.

    State: the int64 buffer ``mix_step`` counts ``loss`` calls (one per training step) and is saved in checkpoints.
    Loading a state dict without it (a checkpoint saved before the buffer existed) keeps the current count and warns:
    a run resumed from such a checkpoint trains correctly but does not mix exactly as the uninterrupted run did.
    """

    def __init__(self, backbone: dict, num_classes: int, mix: Optional[list] = None,
                 label_policy: Optional[dict] = None, smoothing: float = 0.1, grad_checkpointing: bool = False,
                 mix_seed: int = 0, mix_defaults: Optional[dict] = None, token_mixup=None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        # default: mmengine's preprocessor with asynchronous copies (a blocking copy of each pinned batch is one
        # host-device synchronisation per tensor and step, measured on an H200: docs/benchmarks.md)
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BaseDataPreprocessor", non_blocking=True),
                         init_cfg=init_cfg)
        self.backbone = _build_backbone(backbone, num_classes)
        self.mix_seed = mix_seed
        self.num_classes = num_classes
        self.token_stride = getattr(self.backbone, "token_stride", None)
        check_mix_defaults(mix_defaults or {})
        self.mix_defaults = dict(patch_size=self.token_stride, num_classes=num_classes, **(mix_defaults or {}))
        self.mixer = build_schedule(mix, self.mix_defaults)
        self.register_buffer("mix_step", torch.zeros((), dtype=torch.long))
        self._step = 0  # host copy of mix_step: reading the buffer on an accelerator would synchronise every step
        self.policy = build_label_policy(label_policy, num_classes, smoothing)
        self.use_attention = self.policy.needs_attention and has_cls_attention(self.backbone)
        if self.policy.needs_attention and not self.use_attention:
            print_log(f"{type(self.backbone).__name__} has no CLS token: {type(self.policy).__name__} falls back "
                      f"to area labels", logger="current")
        self.token_mixup = build_token_mixup(self.backbone, token_mixup, num_classes, smoothing)
        if len(self.token_mixup.horizontal) and type(self.policy) is not mixpro_core.AreaLabels:
            raise ValueError(f"token_mixup HTM mixes the area targets of the batch inside the forward; it cannot be "
                             f"combined with {type(self.policy).__name__} (whose λ comes from the attention after the "
                             f"forward): use label_policy=dict(type='AreaLabels')")
        if self.use_attention and any(v.layer == len(self.backbone.blocks) - 1 for v in self.token_mixup.vertical):
            raise ValueError(f"token_mixup VTM at the last block adds keys to the attention that "
                             f"{type(self.policy).__name__} reads its CLS attention from: apply VTM to an earlier "
                             f"block")
        if grad_checkpointing and self.token_mixup.active:
            raise ValueError("token_mixup cannot run with grad_checkpointing: the recomputation would replay its hooks")
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

    def _mix_generator(self) -> torch.Generator:
        """Generator of the current step's mixing: seeded with (mix_seed, mix_step, rank), so resuming reproduces it.

        A CPU generator: the draws are a few scalars and a (B, cells) matrix, so drawing them on the host costs
        nothing and avoids device synchronisations; mixers move the small results to the device once."""
        seed = (self.mix_seed * 1_000_003 + self._step * 1_009 + get_rank()) % (2 ** 63)
        return torch.Generator().manual_seed(seed)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        generator = self._mix_generator()
        self._step += 1
        self.mix_step.fill_(self._step)
        batch = self.mixer(inputs, labels, self.backbone, generator)
        with self.token_mixup.feed(batch, labels) as context:
            if self.use_attention:
                logits, cls_attn = forward_with_attention(self.backbone, batch.images)
            else:
                logits, cls_attn = self.backbone(batch.images), None
        htm = self.token_mixup.result(context)  # None without HTM
        if htm is None:
            result = self.policy(batch, logits, cls_attn, labels)
            losses, stats = dict(loss=result.loss), result.stats  # stats: attn_entropy, lam_gap, pal_alpha, ...
        else:  # HTM's targets replace the policy's (area) labels; its ScoreNet loss is added
            losses = dict(loss=soft_target_cross_entropy(logits, htm.targets) + htm.scorenet,
                          scorenet=htm.scorenet.detach(), htm_mixed=htm.mixed)
            stats = {}
        losses.update(batch.stats)  # logged, not summed (no 'loss' in the names)
        losses.update(stats)
        return losses

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if prefix + "mix_step" not in state_dict:
            warnings.warn(f"the state dict has no {prefix}mix_step (saved before MixClassifier counted its steps): "
                          f"the mixing continues from step {self._step}, so a run resumed from it does not mix as the "
                          f"uninterrupted run did", stacklevel=2)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._step = int(self.mix_step)

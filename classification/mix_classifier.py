"""The mmengine model of every classification run: backbone + mix schedule + label policy, one code path.

``loss`` mode: mix on the device (the model-free :class:`mixpro_core.MixSchedule`, or a model-aware mixer such as
R-Mix that may fall back to it), one forward that also yields the CLS attention when the label policy needs it —
with TokenMixup's HTM/VTM attached to the backbone for that forward only — then the loss. No method-specific
branches: the method is the (mixer, token mixup, policy) triple named in the config; a :class:`mixpro_core.TokenMixup`
without modules passes the policy's loss through.

Reliability: the mixing randomness of iteration ``t`` on rank ``r`` comes from a generator seeded with
``(mix_seed, t, r)``, so a resumed run mixes exactly as an uninterrupted one; a non-finite loss stops the run (on all
ranks) before the optimiser step, naming the iteration (under fp16 AMP, steps the loss scaler skips for non-finite
gradients are not failures: ``AmpSkippedStepsHook`` counts and logs them).
"""
from __future__ import annotations

import inspect
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_rank
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS

import mixpro_core
from mixpro_core import MixSchedule, RLMixer, RMixer, build_token_mixup, forward_with_attention, has_cls_attention

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


class _ScheduleMixer:
    """The model-free mixer: ``MixSchedule`` behind the model-aware call ``(images, labels, model, generator)``."""

    def __init__(self, schedule: MixSchedule):
        self.schedule = schedule

    def __call__(self, images, labels, model, generator):
        return self.schedule(images, generator)

    def __repr__(self) -> str:
        return repr(self.schedule)


MODEL_MIXERS = {"rmix": RMixer, "rlmix": RLMixer}


def _build_mixer(schedule: MixSchedule, cfg: Optional[dict], num_classes: int):
    if not cfg:
        return _ScheduleMixer(schedule)
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in MODEL_MIXERS:
        raise ValueError(f"model_mixer.type must be one of {sorted(MODEL_MIXERS)}, got {kind!r}")
    try:
        return MODEL_MIXERS[kind](schedule, num_classes=num_classes, **cfg)
    except TypeError as err:
        raise ValueError(f"model_mixer ({kind}): unknown key in {sorted(cfg)}: {err}") from None


def validate_training_config(cfg) -> None:
    """Errors a MixClassifier training config would otherwise hit mid-run: mixing needs batches of at least 2 (and a
    dropped last batch, which could hold a single sample)."""
    if cfg.get("model", {}).get("type") != "MixClassifier" or not cfg.get("train_dataloader"):
        return
    defaults = inspect.signature(MixSchedule).parameters
    mix = {k: p.default for k, p in defaults.items()}
    mix.update(cfg.model.get("mix") or {})
    mixes = (mix["maskmix_prob"] > 0 and mix["maskmix_alpha"] > 0) or mix["mixup_alpha"] > 0 or mix["cutmix_alpha"] > 0
    mixes = mixes or bool(cfg.model.get("model_mixer"))
    loader = cfg.train_dataloader
    if not mixes:
        return
    if loader.get("batch_size", 1) < 2:
        raise ValueError(f"train_dataloader.batch_size={loader.get('batch_size', 1)}: mixing pairs samples within a "
                         f"batch and needs at least 2 per process")
    if not loader.get("drop_last", False):
        raise ValueError("train_dataloader.drop_last must be True when mixing: a last batch of one sample cannot be "
                         "mixed")


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
        mix_seed: base seed of the per-iteration mixing generator.
        model_mixer: a mixer that needs the model, ``dict(type='rmix', alpha=1.0, grid=None, prob=1.0)``: with
            probability ``prob`` R-Mix (saliency from one extra input-gradient pass of the backbone), otherwise the
            ``mix`` schedule. Its λ_eff is an area λ: use AreaLabels. ``dict(type='rlmix', ...)`` is RL-Mix
            (:class:`mixpro_core.RLMixer`: R-Mix with each image's saliency quantile chosen by a PPO policy; needs
            ``pip install .[rlmix]``); the policy is saved in the checkpoints (``mixer._extra_state``) and its mean
            reward / q are logged (``rlmix_reward``, ``rlmix_q``).
        token_mixup: TokenMixup inside the backbone (``mixpro_core.build_token_mixup``): one dict or a list of
            ``dict(type='htm', layer=2, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None)`` /
            ``dict(type='vtm', layer=2, kappa=80)``; ``layer`` counts backbone blocks from 0. HTM starts from the area
            targets of the image-mixed batch, so it needs AreaLabels; the loss is soft-target CE against HTM's
            targets + λ_sn·ScoreNet CE. The ScoreNets are parameters of this model (``token_mixup.*``), outside
            ``backbone.*``.
    """

    def __init__(self, backbone: dict, num_classes: int, mix: Optional[dict] = None,
                 label_policy: Optional[dict] = None, smoothing: float = 0.1, grad_checkpointing: bool = False,
                 mix_seed: int = 0, model_mixer: Optional[dict] = None, token_mixup=None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        backbone.setdefault("num_classes", num_classes)
        try:
            self.backbone = MODELS.build(backbone)
        except TypeError as err:
            raise ValueError(f"model.backbone ({backbone.get('type')}): bad key in {sorted(backbone)}: {err}") from None
        self.mix_seed = mix_seed
        self.num_classes = num_classes
        self.token_stride = getattr(self.backbone, "token_stride", None)
        self.schedule = _build_schedule(mix, self.token_stride)
        self.mixer = _build_mixer(self.schedule, model_mixer, num_classes)
        self.policy = _build_policy(label_policy or dict(type="AreaLabels"), num_classes, smoothing)
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
                             f"{type(self.policy).__name__} reads its CLS attention from: apply VTM to an earlier block")
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
        """Generator for this iteration's mixing: seeded with (mix_seed, iteration, rank), so resuming reproduces it.

        A CPU generator: the draws are a few scalars and a (B, cells) matrix, so drawing them on the host costs
        nothing and avoids device synchronisations for the scalar λ; mixers move the small results to the device."""
        iteration = MessageHub.get_current_instance().get_info("iter", 0)
        seed = (self.mix_seed * 1_000_003 + iteration * 1_009 + get_rank()) % (2 ** 63)
        return torch.Generator().manual_seed(seed)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        batch = self.mixer(inputs, labels, self.backbone, self._mix_generator())
        with self.token_mixup.feed(batch, labels) as context:
            if self.use_attention:
                logits, cls_attn = forward_with_attention(self.backbone, batch.images)
            else:
                logits, cls_attn = self.backbone(batch.images), None
        losses = self.token_mixup.losses(context, self.policy, batch, logits, cls_attn, labels)
        losses.update(getattr(self.mixer, "stats", {}))  # logged, not summed (no 'loss' in the names)
        return losses

    def parse_losses(self, losses: dict):
        """mmengine's reduction, then stop on a non-finite loss (agreed across ranks, so none is left waiting)."""
        loss, log_vars = super().parse_losses(losses)
        finite = torch.isfinite(loss.detach()).float()
        all_reduce(finite, op="min")
        if not bool(finite):
            iteration = MessageHub.get_current_instance().get_info("iter", 0)
            raise FloatingPointError(
                f"non-finite training loss ({float(loss.detach())} on rank {get_rank()}) at iteration {iteration + 1}:"
                f" stopping before the optimiser step; the last checkpoint in the work dir is the last good state "
                f"(resume with --resume after lowering the lr or checking the data)")
        return loss, log_vars

"""The mmengine model of every classification run: backbone + training method (``mixpro_core.Method``).

``loss`` mode, one code path: draw the step's generator and call the method, ``method(backbone, images, labels,
generator) -> MethodResult`` (loss, λ, logged statistics); the classifier does not know which method it runs
(``mixpro_core.method``; docs/methods.md, "Method schedule"). Step ``t``'s mixing on rank ``r`` is seeded by
``(mix_seed, t, r)``, ``t`` the checkpointed buffer ``mix_step``: a resumed run mixes exactly as an uninterrupted
one, in any training loop. A non-finite loss is stopped by the optimiser wrapper
(:mod:`classification.engine.optim_wrapper`), not here."""
from __future__ import annotations

import warnings
from typing import Mapping, Optional

import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from classification.foundation.errors import UserError
from mixpro_core import METHODS, POLICY_STATS, build_method, check_options, token_stride

LEGACY_PREFIXES = ("mixer.", "token_mixup.")
"""State-dict prefixes of the method's children before the method contract (RL-Mix state, HTM ScoreNets); now under
``method.``."""
REQUIRED = object()
"""Default of ``MixClassifier(mix=...)``: the schedule must be given (None for no mixing) unless ``method`` is."""


def _methods_reading(keys) -> list:
    """The names of the registered methods (``mixpro_core.METHODS``) whose ``EXTRAS`` hold every one of ``keys``."""
    return [name for name in METHODS.names() if set(keys) <= set(getattr(METHODS.get(name), "EXTRAS", ()))]


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
            ``[dict(type='rmix', prob=1.0, alpha=1.0, grid=None)]``, RL-Mix ``dict(type='rlmix', ...)`` (needs
            ``pip install .[rlmix]``; its policy is saved in the checkpoints). None or [] → no mixing (logged at
            build). Required unless ``method`` is given: a config that leaves both out is refused.
        label_policy: ``dict(type='AreaLabels' | 'TransMixLabels' | 'PALLabels', **options)``.
        smoothing: label smoothing s of the soft targets (every method).
        grad_checkpointing: activation checkpointing of the backbone blocks.
        mix_seed: base seed of the per-step mixing generator.
        mix_defaults: options given to every mixer of ``mix`` that takes them unless its entry sets them, e.g. the
            model's MaskMix cell size ``dict(mask_size=32)``; ``patch_size`` defaults to the backbone's
            ``token_stride`` and ``num_classes`` to K.
        token_mixup: TokenMixup inside the backbone (``mixpro_core.build_token_mixup``): one dict or a list of
            ``dict(type='htm', layer=2, tau=0.2, rho=0.005, lambda_sn=0.001, pool=None)`` /
            ``dict(type='vtm', layer=2, kappa=80)``; ``layer`` counts backbone blocks from 0; HTM needs AreaLabels.
        method: the training method, ``dict(type=<name in mixpro_core.METHODS>, **options)``, e.g.
            ``dict(type='tlalign', alpha=1.0)`` or ``dict(type='smmix')`` (docs/methods.md). When None it is
            ``dict(type='schedule', mix=mix, label_policy=label_policy, token_mixup=token_mixup)``
            (:class:`mixpro_core.ScheduleMethod`), built from the three keys above, which every image-mixing
            config uses; they cannot be combined with ``method``.

    The method's parameters and state (SMMix's region head, HTM's ScoreNets, RL-Mix's policy) are children of this
    model under ``method.*``; a checkpoint saved before the method contract (``mixer.*``, ``token_mixup.*``) loads
    into them.
    State: the int64 buffer ``mix_step`` counts ``loss`` calls (one per training step) and is saved in checkpoints.
    Loading a state dict without it (a checkpoint saved before the buffer existed) keeps the current count and warns:
    a run resumed from such a checkpoint trains correctly but does not mix exactly as the uninterrupted run did.

    What the engine asks of it (docs/development.md, "How it fits together"): :attr:`backbone_prefix`,
    :attr:`curve_stats` and :meth:`check_training_config`.
    """

    backbone_prefix = "backbone."
    """Where a bare classifier checkpoint (timm, a release, an EMA copy: keys without this prefix) is loaded: the
    Runner's ``load_from`` reads it into this model's keys under the prefix."""
    curve_stats = tuple(POLICY_STATS)
    """The logged training statistics (``MethodResult`` stats) that TrainingCurveHook follows as curves."""

    @classmethod
    def check_training_config(cls, cfg) -> None:
        """UserError, before anything is built, for a training config (``cfg``, with a ``train_dataloader``) that
        would fail at build or mid-run: a model without ``mix`` (or ``method``; ``mix=None`` is no mixing), mixing with
        batches of fewer than 2 or without a dropped last batch (which could hold a single sample)."""
        if "mix" not in cfg.model and cfg.model.get("method") is None:
            raise UserError("model.mix is not set: apply a method base (model = dict(_base_.method), "
                            "configs/classification/_base_/methods/) or set model.mix=None to train without mixing")
        mix = cfg.model.get("mix") or []
        if isinstance(mix, dict) or not isinstance(mix, (list, tuple)):
            raise UserError(f"model.mix must be a list of mixer configs dict(type=..., prob=..., **options), got "
                            f"{mix!r}")
        if not any(entry.get("prob", 0) > 0 for entry in mix):
            return
        loader = cfg.train_dataloader
        if loader.get("batch_size", 1) < 2:
            raise UserError(f"train_dataloader.batch_size={loader.get('batch_size', 1)}: mixing pairs samples within "
                            f"a batch and needs at least 2 per process")
        if not loader.get("drop_last", False):
            raise UserError("train_dataloader.drop_last must be True when mixing: a last batch of one sample cannot "
                            "be mixed")

    def __init__(self, backbone: dict, num_classes: int, mix: Optional[list] = REQUIRED,
                 label_policy: Optional[dict] = None, smoothing: float = 0.1, grad_checkpointing: bool = False,
                 mix_seed: int = 0, mix_defaults: Optional[dict] = None, token_mixup=None, method: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        # default: mmengine's preprocessor with asynchronous copies (a blocking copy of each pinned batch is one
        # host-device synchronisation per tensor and step, measured on an H200: docs/benchmarks.md)
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BaseDataPreprocessor", non_blocking=True),
                         init_cfg=init_cfg)
        self.backbone = _build_backbone(backbone, num_classes)
        self.mix_seed = mix_seed
        self.num_classes = num_classes
        self.token_stride = token_stride(self.backbone)
        self.register_buffer("mix_step", torch.zeros((), dtype=torch.long))
        self._step = 0  # host copy of mix_step: reading the buffer on an accelerator would synchronise every step
        if method is None and mix is REQUIRED:
            raise ValueError("model.mix is required: a list of mixers, None for no mixing, or model.method")
        schedule_keys = dict(mix=None if mix is REQUIRED else mix, label_policy=label_policy, token_mixup=token_mixup)
        if method is None:
            if not mix:
                print_log("no mixing", logger="current")
            method = dict(type="schedule", **schedule_keys)
        elif any(v is not None for v in schedule_keys.values()):
            given = sorted(k for k, v in schedule_keys.items() if v is not None)
            raise ValueError(f"model.method ({dict(method).get('type')!r}) replaces the keys {given}: remove them, "
                             f"or drop model.method to use the mixing schedule")
        self.method = build_method(method, self.backbone, num_classes, smoothing, mix_defaults, grad_checkpointing)
        if grad_checkpointing:
            self.backbone.set_grad_checkpointing(True)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None, mode: str = "tensor"):
        """inputs (B,C,H,W); data_samples (B,) integer labels, or in 'loss' mode a dict of the labels (``labels``)
        and the method's per-sample inputs (``Method.EXTRAS``, e.g. TokenMix's label maps). Modes: 'loss' →
        dict(loss), 'predict' → a list with one dict(logits (B,K), labels (B,)) per batch, 'tensor' → logits."""
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

    def loss(self, inputs: torch.Tensor, labels) -> dict:
        """dict(loss, **the method's statistics) of one training step (statistics are logged, not summed); ``labels``
        as ``data_samples`` of :meth:`forward`."""
        generator = self._mix_generator()
        self._step += 1
        self.mix_step.fill_(self._step)
        labels, extras = self._method_inputs(labels)
        result = self.method(self.backbone, inputs, labels, generator, **extras)
        return dict(loss=result.loss, **result.stats)

    def _method_inputs(self, data_samples) -> tuple:
        """(labels, {}) for a method without ``EXTRAS``, (labels, dict(extras={name: tensor})) for one with;
        UserError when the batch lacks an extra the method reads or carries extras the method does not read."""
        if not isinstance(data_samples, Mapping):
            data_samples = dict(labels=data_samples)
        extras = {k: v for k, v in data_samples.items() if k != "labels"}
        missing = [k for k in self.method.EXTRAS if k not in extras]
        if missing:
            raise UserError(self.method.missing_extras_message(missing))
        unread = sorted(set(extras) - set(self.method.EXTRAS))
        if unread:
            readers = _methods_reading(unread)
            hint = (f"or a method that reads them ({', '.join(readers)})" if readers
                    else "(no registered method reads them)")
            raise UserError(f"the training batches carry {', '.join(unread)}, which {type(self.method).__name__} "
                            f"does not read: use a dataset without them {hint}")
        return data_samples["labels"], (dict(extras=extras) if self.method.EXTRAS else {})

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for key in [k for k in state_dict if k.startswith(tuple(prefix + p for p in LEGACY_PREFIXES))]:
            state_dict[prefix + "method." + key[len(prefix):]] = state_dict.pop(key)
        if prefix + "mix_step" not in state_dict:
            warnings.warn(f"the state dict has no {prefix}mix_step (saved before MixClassifier counted its steps): "
                          f"the mixing continues from step {self._step}, so a run resumed from it does not mix as the "
                          f"uninterrupted run did", stacklevel=2)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._step = int(self.mix_step)

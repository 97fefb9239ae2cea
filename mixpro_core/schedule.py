"""The mixer registry's one call signature and the per-iteration schedule (docs/methods.md, "Method schedule").

Every mixer is called as ``mixer(images, labels=None, model=None, generator=None) -> MixBatch``. A registered mixer
(``@MIXERS.register(name)``, :data:`~mixpro_core.registry.MIXERS`) is either a function whose first parameter is
``images`` (B,C,H,W), taking any of ``labels``, ``model``, ``generator`` by those names, its other parameters being
options bound from the config by :class:`Mixer`; or a class whose constructor takes the options and whose instances
are called as above (stateful mixers such as RL-Mix: an ``nn.Module``, so its state travels in checkpoints).
A schedule (:func:`build_schedule` → :class:`MixSchedule`) is a list of ``(mixer, probability)``: per batch one
uniform u picks the entry whose cumulative interval holds u (list order); a total below 1 leaves the rest unmixed; a
single entry of probability 1 draws no u. A new mixer is one registered function: the :class:`MixBatch` it returns
says which attention labels apply (``token_mask`` / ``token_exact``).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .mixing import MixBatch, _uniform, no_mix
from .registry import MIXERS, accepted_names, call_with_options, check_options

CALL_ARGS = ("images", "labels", "model", "generator")
"""The arguments every mixer is called with (filled per batch, never from a config)."""


class Mixer(nn.Module):
    """A registered mixer function with its options bound; called ``mixer(images, labels, model, generator)``.

    Passes ``labels`` / ``model`` / ``generator`` only to functions that take them. No parameters, no state."""

    def __init__(self, name: str, fn: Callable[..., MixBatch], options: Mapping[str, Any]):
        super().__init__()
        self.name, self.fn, self.options = name, fn, dict(options)
        names = accepted_names(fn)
        self._passed = [a for a in CALL_ARGS[1:] if names is None or a in names]

    def forward(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None, model: Optional[nn.Module] = None,
                generator: Optional[torch.Generator] = None) -> MixBatch:
        given = dict(labels=labels, model=model, generator=generator)
        return self.fn(images, **{a: given[a] for a in self._passed}, **self.options)

    def extra_repr(self) -> str:
        return ", ".join([self.name] + [f"{k}={v!r}" for k, v in self.options.items()])


def build_mixer(cfg: Mapping[str, Any], defaults: Mapping[str, Any] = ()) -> nn.Module:
    """``dict(type=name, **options)`` → a mixer. ``defaults`` (e.g. ``patch_size``, ``num_classes``, ``mask_size``)
    reach the mixers that take them; the config's options win. Unknown option names raise ValueError before any
    constructor runs."""
    name, factory, options = MIXERS.split(cfg)
    where = f"mixer ({name})"
    if inspect.isclass(factory):
        return call_with_options(factory, options, where, defaults, reserved=CALL_ARGS)
    check_options(factory, options, where, reserved=CALL_ARGS)
    names = accepted_names(factory)
    bound = {k: v for k, v in dict(defaults).items() if (names is None or k in names) and k not in CALL_ARGS}
    bound.update(options)
    return Mixer(name, factory, bound)


class MixSchedule(nn.Module):
    """Picks one mixer per batch: ``entries`` is a sequence of ``(mixer, probability)`` with probabilities in [0, 1]
    summing to at most 1; the rest of the mass is 'no mixing'. An empty schedule never mixes (and draws nothing)."""

    def __init__(self, entries: Sequence[Tuple[Callable, float]] = ()):
        super().__init__()
        probs = [float(p) for _, p in entries]
        for (mixer, p) in entries:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"mix probability must be in [0, 1], got {p} for {mixer!r}")
        if sum(probs) > 1.0 + 1e-6:
            raise ValueError(f"mix probabilities sum to {sum(probs)} > 1: {probs}")
        self.mixers = nn.ModuleList([m for m, _ in entries])
        self.probs = probs
        self._bounds = torch.tensor(probs, dtype=torch.float64).cumsum(0).tolist()

    @property
    def mixes(self) -> bool:
        """False when every batch passes through unmixed."""
        return any(p > 0 for p in self.probs)

    def choose(self, generator: Optional[torch.Generator] = None) -> Optional[int]:
        """Index of the mixer for the next batch, None for no mixing: one uniform from ``generator``, none when the
        choice is certain (no entries, or one entry of probability 1)."""
        if not self.mixers:
            return None
        if len(self.mixers) == 1 and self.probs[0] >= 1.0:
            return 0
        u = float(_uniform((), generator))
        for index, bound in enumerate(self._bounds):
            if u < bound:
                return index
        return None

    def find(self, name: str) -> Optional[nn.Module]:
        """The first mixer registered as ``name`` in the schedule (a :class:`Mixer`'s name or the class's
        registered name), None if absent."""
        for mixer in self.mixers:
            if getattr(mixer, "name", None) == name:
                return mixer
        return None

    def forward(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None, model: Optional[nn.Module] = None,
                generator: Optional[torch.Generator] = None) -> MixBatch:
        index = self.choose(generator)
        if index is None:
            return no_mix(images)
        return self.mixers[index](images, labels, model, generator)

    def extra_repr(self) -> str:
        return f"probs={self.probs}"


def build_schedule(cfg: Optional[Sequence[Mapping[str, Any]]], defaults: Mapping[str, Any] = ()) -> MixSchedule:
    """A :class:`MixSchedule` from a list of mixer configs, each with its schedule probability under ``prob``:
    ``[dict(type='maskmix', prob=0.5, alpha=1.0), dict(type='cutmix', prob=0.25), ...]``. None or [] → no mixing.
    Entries with ``prob=0`` are dropped (not built). ``defaults`` as in :func:`build_mixer`."""
    if cfg is None:
        return MixSchedule()
    if isinstance(cfg, Mapping) or not isinstance(cfg, (list, tuple)):
        raise ValueError(f"mix must be a list of mixer configs dict(type=..., prob=..., **options), got {cfg!r}")
    entries = []
    for item in cfg:
        item = dict(item)
        if "prob" not in item:
            raise ValueError(f"mix entry {item!r} has no 'prob' (its probability in the schedule)")
        prob = item.pop("prob")
        if prob:
            entries.append((build_mixer(item, defaults), prob))
    return MixSchedule(entries)


def check_mix_defaults(defaults: Mapping[str, Any]) -> None:
    """ValueError for a key of ``defaults`` that no registered mixer takes (a misspelt default would else be
    ignored silently)."""
    for key in defaults:
        if not any(key in (accepted_names(MIXERS.get(n)) or {key}) for n in MIXERS.names()):
            raise ValueError(f"mix_defaults: no registered mixer takes {key!r} (mixers: {MIXERS.names()})")

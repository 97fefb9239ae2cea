"""Strict checkpoint loading, the one rule of every tool (train ``load_from`` / ``--resume``, test, visualize,
robustness, a backbone's ``pretrained=``) and of the downstream backbones: every key of the model must come from the
checkpoint with its shape, and every key of the checkpoint must have a place in the model; anything else stops the
run before any work, with a :class:`CheckpointMismatchError` naming each key and both shapes. Partial loading is an
explicit opt-in: ``partial`` ``fnmatch`` patterns (``'head.*'``; ``'head'`` = ``'head.*'``) name the model keys that
may keep their initial values and the checkpoint keys that may be dropped; what they excused is returned in the
:class:`LoadReport` and logged. Reading is weights-only: :func:`load_checkpoint_file` reads with
``torch.load(weights_only=True)`` and an allow-list of the few non-tensor types mmengine stores (torch ≥ 2.6 refuses
them by default, mmengine 0.10.7 does not pass the flag); mmengine reads local checkpoints that way once
:func:`install_safe_checkpoint_loading` has been called (the tools do; importing the package leaves mmengine's
loaders alone). A file that cannot be read so is one line naming it.
"""
from __future__ import annotations

import argparse
import fnmatch
import glob
import logging
import os.path as osp
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from classification.foundation.errors import MissingPathError, UserError

__all__ = ["CheckpointMismatchError", "LoadReport", "StateDifferences", "compare_state_dicts", "checkpoint_state",
           "load_state_dict_strict", "load_checkpoint_strict", "load_init_checkpoint", "latest_checkpoint",
           "in_work_dir", "own_checkpoint",
           "SAFE_CHECKPOINT_GLOBALS", "load_checkpoint_file", "load_from_local", "install_safe_checkpoint_loading"]

_LISTED = 6  # keys named per kind in an error message (the rest are counted)


# ----------------------------------------------------------------------------------------- weights-only reading
def _history_buffer_getattr(obj, name: str):
    """Stand-in for ``getattr`` while unpickling: mmengine pickles HistoryBuffer's statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; allowing the real getattr would let a checkpoint reach any attribute."""
    if obj is HistoryBuffer and name in {"min", "max", "current", "mean", *HistoryBuffer._statistics_methods}:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed")


# What an mmengine checkpoint holds besides tensors: the message hub's HistoryBuffers (numpy arrays and their
# statistics methods inside) and numpy scalars in the meta / scheduler states.
_np_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
SAFE_CHECKPOINT_GLOBALS = [
    HistoryBuffer, np.ndarray, np.dtype, _np_multiarray._reconstruct, _np_multiarray.scalar,
    *{type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")},
    (_history_buffer_getattr, "builtins.getattr"),
    argparse.Namespace,  # the ``args`` entry of timm / DeiT training checkpoints: a plain attribute container
]


def _load_reason(err: BaseException) -> str:
    """A short reason from a torch.load failure (its weights-only message is long and mostly boilerplate)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = "weights-only loading refused it: " + text.split("WeightsUnpickler error:", 1)[1].split(
            "Check the documentation", 1)[0]
    text = " ".join(text.split()).strip(" .")
    if isinstance(err, KeyError):
        text = f"invalid pickle data, KeyError {text}"
    text = text or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_checkpoint_file(filename: str, map_location=None):
    """torch.load with weights_only=True, allowing only the types in SAFE_CHECKPOINT_GLOBALS; a ``.safetensors``
    file (timm's hub format: a flat dict of tensors) is read with safetensors.

    Raises :class:`~classification.foundation.errors.MissingPathError` for a missing file and a one-line
    :class:`~classification.foundation.errors.UserError` naming the file for one torch cannot read this way (not a
    checkpoint, truncated, or holding objects outside the allow-list)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise MissingPathError(f"checkpoint not found: {filename}")
    try:
        if filename.endswith(".safetensors"):
            from safetensors.torch import load_file
            device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
            return load_file(filename, device=str(device))
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip, weights-only refusals: all mean "not a checkpoint we can read"
        raise UserError(f"{filename} is not a readable torch checkpoint ({_load_reason(err)})") from err


def load_from_local(filename: str, map_location=None):
    """mmengine's local-file scheme, weights-only (mmengine logs the name after ``load_from_``)."""
    return load_checkpoint_file(filename, map_location)


def install_safe_checkpoint_loading() -> None:
    """Make mmengine read every local checkpoint through :func:`load_checkpoint_file` (weights-only, allow-list).

    Process-wide: it replaces the loader of mmengine's local-file scheme (prefix ``""``) in ``CheckpointLoader``, the
    one path through which the Runner's ``load_from`` / ``resume`` and model ``init_cfg`` checkpoints are read.
    Importing this package changes nothing; the command-line tools (training, testing, conversion, robustness,
    demo, reproduction) call this once at start. Idempotent.

    ``force=True`` is mmengine's public way (0.10.7) to replace the loader of a registered prefix, and replacing it is
    the purpose. The one non-forcing way would be a new prefix that matches every local path and no URL scheme: a
    regular expression that works only through how ``CheckpointLoader`` matches (``re.match``) and orders
    (reverse-sorted) its prefixes, which mmengine does not document."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)


# ------------------------------------------------------------------------------------------------ strict loading

@dataclass
class StateDifferences:
    """How a checkpoint state dict differs from a model's: keys only in the model, only in the checkpoint, and
    ``(key, checkpoint shape, model shape)`` of the tensors whose shapes differ; each sorted by key."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """One line: the differing keys by kind (shapes for the mismatched ones), at most a few per kind."""
        def listed(items: list, show) -> str:
            shown = ", ".join(show(i) for i in items[:_LISTED])
            return shown + (f" (+{len(items) - _LISTED} more)" if len(items) > _LISTED else "")

        parts = []
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} of another shape: " + listed(
                self.mismatched, lambda m: f"{m[0]} (checkpoint {_shape(m[1])}, model {_shape(m[2])})"))
        if self.missing:
            parts.append(f"{len(self.missing)} missing from the checkpoint: " + listed(self.missing, str))
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} not in the model: " + listed(self.unexpected, str))
        return "; ".join(parts)


def _shape(shape: tuple) -> str:
    return str(tuple(shape))


class CheckpointMismatchError(UserError):
    """A checkpoint whose keys or shapes do not fit the model; ``differences`` says how."""

    def __init__(self, source: str, target: str, differences: StateDifferences, hint: str = ""):
        self.source, self.target, self.differences = source, target, differences
        advice = hint or "Load a checkpoint of this model"
        super().__init__(f"{source} does not fit {target}: {differences.describe()}. {advice}; to leave keys at their "
                         f"initial values on purpose, name them (partial loading, docs/training.md \"Checkpoints\")")


@dataclass
class LoadReport:
    """A strict load: ``loaded`` tensors; ``kept_initial`` model keys and ``dropped`` checkpoint keys excused by the
    ``partial`` patterns (empty without them)."""

    source: str
    loaded: int
    kept_initial: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)

    def format(self) -> str:
        text = f"loaded {self.loaded} tensors from {self.source}"
        if self.kept_initial:
            text += f"; partial loading kept {len(self.kept_initial)} at their initial values: " + ", ".join(
                self.kept_initial)
        if self.dropped:
            text += f"; dropped {len(self.dropped)} checkpoint keys: " + ", ".join(self.dropped)
        return text


def compare_state_dicts(model_state: Mapping[str, Any], state: Mapping[str, Any]) -> StateDifferences:
    """The differences of ``state`` (a checkpoint's) from ``model_state`` (``module.state_dict()``). Shapes are compared
    for tensors; non-tensor entries (modules' extra state) only by presence."""
    mismatched = [(k, tuple(v.shape), tuple(model_state[k].shape)) for k, v in state.items()
                  if k in model_state and isinstance(v, torch.Tensor) and isinstance(model_state[k], torch.Tensor)
                  and v.shape != model_state[k].shape]
    return StateDifferences(sorted(set(model_state) - set(state)), sorted(set(state) - set(model_state)),
                            sorted(mismatched))


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) or (not any(c in p for c in "*?[") and key.startswith(p + "."))
               for p in patterns)


def checkpoint_state(checkpoint: Any, source: str,
                     revise_keys: Sequence[Tuple[str, str]] = ((r"^module\.", ""),)) -> Dict[str, Any]:
    """The state dict inside a loaded checkpoint: mmengine's ``state_dict``, ``{'model': ...}``, ``{'module': ...}`` or
    a bare state dict, its keys revised by the ``(pattern, replacement)`` pairs (default: DDP's ``module.`` prefix
    stripped). UserError naming ``source`` if it holds none."""
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise UserError(f"{source} holds no state dict of tensors")
    state = dict(checkpoint)
    for pattern, replacement in revise_keys:
        state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
    return _keep_metadata(state, checkpoint)


def _keep_metadata(state: Mapping[str, Any], source: Mapping) -> OrderedDict:
    """``state`` as an OrderedDict with ``source``'s ``_metadata`` (the module versions ``load_state_dict`` reads)."""
    out = OrderedDict(state)
    metadata = getattr(source, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata
    return out


def load_state_dict_strict(module: torch.nn.Module, state: Mapping[str, Any], source: str,
                           partial: Sequence[str] = (), hint: str = "") -> LoadReport:
    """Load ``state`` into ``module`` after checking that it fits (see the module docstring); nothing is loaded when
    it does not. ``source`` names the checkpoint in messages; ``hint`` replaces the error's advice; the report is
    logged. Raises :class:`CheckpointMismatchError`."""
    if isinstance(partial, str):
        partial = [partial]
    differences = compare_state_dicts(module.state_dict(), state)
    kept = sorted({k for k in differences.missing if _matches(k, partial)}
                  | {k for k, _, _ in differences.mismatched if _matches(k, partial)})
    dropped = [k for k in differences.unexpected if _matches(k, partial)]
    left = StateDifferences([k for k in differences.missing if k not in kept],
                            [k for k in differences.unexpected if k not in dropped],
                            [m for m in differences.mismatched if m[0] not in kept])
    if left:
        raise CheckpointMismatchError(source, type(module).__name__, left, hint)
    usable = _keep_metadata({k: v for k, v in state.items() if k not in kept and k not in dropped}, state)
    module.load_state_dict(usable, strict=False)
    report = LoadReport(source, sum(isinstance(v, torch.Tensor) for v in usable.values()), kept, dropped)
    print_log(report.format(), logger="current")
    return report


def load_checkpoint_strict(module: torch.nn.Module, path: str, partial: Sequence[str] = ()) -> LoadReport:
    """Read ``path`` weights-only onto the CPU and :func:`load_state_dict_strict` its state dict into ``module``."""
    return load_state_dict_strict(module, checkpoint_state(load_checkpoint_file(path, map_location="cpu"), path), path,
                                  partial)


def load_init_checkpoint(module: torch.nn.Module, init_cfg: Mapping[str, Any],
                         convert: Optional[Callable[[dict], dict]] = None, hint: str = "") -> LoadReport:
    """A downstream backbone's ``init_cfg=dict(type='Pretrained', checkpoint=PATH, partial=[patterns])`` (``partial``
    optional), read through mmengine's ``CheckpointLoader`` (weights-only once the tools installed it) and loaded with
    :func:`load_state_dict_strict`; ``convert`` renames the state first (e.g. mmdet's ``pvt_convert``)."""
    unknown = sorted(set(init_cfg) - {"type", "checkpoint", "partial"})
    if unknown or not init_cfg.get("checkpoint"):
        raise UserError(f"init_cfg={dict(init_cfg)!r}: expected dict(type='Pretrained', checkpoint=PATH, "
                        f"partial=[key patterns])")
    path = init_cfg["checkpoint"]
    state = checkpoint_state(CheckpointLoader.load_checkpoint(path, map_location="cpu"), path)
    if convert is not None:
        state = _keep_metadata(convert(state), state)
    return load_state_dict_strict(module, state, path, init_cfg.get("partial") or (), hint)


def in_work_dir(path: str, work_dir: str) -> bool:
    """Whether ``path`` (relative: to ``work_dir``) is a file name directly inside ``work_dir`` (symlinks resolved)."""
    path = osp.join(work_dir, path)
    return osp.realpath(osp.dirname(osp.abspath(path))) == osp.realpath(work_dir)


def own_checkpoint(path: Optional[str], work_dir: str, what: str) -> Optional[str]:
    """``path`` as a file of ``work_dir`` (a run's checkpoint folder): itself when it lies there (relative names are
    read in ``work_dir``), else the file of the same name in ``work_dir`` (a copied work dir's pointers still name the
    original's files), else None; ``what`` names the entry in the warning logged when the name is redirected or
    dropped. A run reads, writes and deletes only its own files through these names."""
    if not path:
        return None
    if in_work_dir(path, work_dir):
        return osp.join(work_dir, path)
    own = osp.join(work_dir, osp.basename(path))
    found = osp.isfile(own)
    print_log(f"{what} names {path}, outside {work_dir} (a copied work dir?): "
              + (f"using {own}" if found else f"{work_dir} has no {osp.basename(path)}; ignored"),
              logger="current", level=logging.WARNING)
    return own if found else None


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume auto`` continues from: the one ``<work_dir>/last_checkpoint`` names, or, when that
    pointer is missing, empty or names a missing file, the newest ``epoch_*.pth`` / ``iter_*.pth`` /
    ``preempted.pth`` (modification time); None without any. mmengine's CheckpointHook rewrites the pointer with a
    plain ``open(..., 'w')`` right after each (atomic) checkpoint save, so a kill -9 at that moment leaves it empty.
    The pointer holds an absolute path: one outside ``work_dir`` is read as the same name inside it
    (:func:`own_checkpoint`)."""
    pointer = osp.join(work_dir, "last_checkpoint")
    named = open(pointer).read().strip() if osp.isfile(pointer) else ""
    own = own_checkpoint(named, work_dir, pointer)
    if own and osp.isfile(own):
        return own
    found = [p for pattern in ("epoch_*.pth", "iter_*.pth", "preempted.pth")
             for p in glob.glob(osp.join(work_dir, pattern))]
    if not found:
        return None
    newest = max(found, key=osp.getmtime)
    print_log(f"{pointer} is {'missing' if not osp.isfile(pointer) else 'unusable (' + repr(named) + ')'}: resuming "
              f"from the newest checkpoint, {newest}", logger="current", level=logging.WARNING)
    return newest

"""Checkpoint layouts users have, read into this suite's classifier names: the reading side of
``tools/convert_checkpoint.py``, a classifier's ``pretrained=`` and ``tools/test.py`` / ``load_from`` of a classifier.

Containers: this suite's mmengine checkpoint (``state_dict``, MixClassifier keys under ``backbone.``); timm's train
checkpoint (``state_dict``, EMA weights in ``state_dict_ema``); timm's hub file ``model.safetensors`` (a flat dict);
``{'model': ...}`` releases (DeiT, the official MixPro code — its DeiT configs use patch 14 — and PVT v1; EMA in
``model_ema``); ``{'module': ...}``; a bare state dict. Names: timm's ViT names and the official PVT v1 names are
this suite's own (``classification/models``), so no renaming is needed; :func:`detect_architecture` says which.
``ema=True`` reads the EMA entry (an error naming the file when there is none); mmengine's EMAHook saves the averaged
weights as ``state_dict`` (the raw ones in ``ema_state_dict``), so there ``state_dict`` is the EMA copy. A file whose
EMA copy is not read says so (:func:`ema_note`). Reading is weights-only
(:func:`classification.foundation.checkpoints.load_checkpoint_file`). :func:`load_source_strict` is the one way a
read source goes into a module: its notes logged, then
:func:`classification.foundation.checkpoints.load_state_dict_strict`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from classification.foundation.checkpoints import (LoadReport, checkpoint_state, load_checkpoint_file,
                                                   load_state_dict_strict)
from classification.foundation.errors import UserError

PLAIN_ENTRIES = ("state_dict", "model", "module")
EMA_ENTRIES = ("state_dict_ema", "model_ema")
MMENGINE_EMA = "ema_state_dict"  # EMAHook: the raw weights; 'state_dict' holds the averaged ones
_WRAPPER_PREFIXES = ("module.", "model.")  # DDP / EMA wrappers, stripped first
_CONTAINERS = {"state_dict": "timm train checkpoint / mmengine checkpoint ('state_dict')",
               "state_dict_ema": "timm train checkpoint, EMA weights ('state_dict_ema')",
               "model": "release {'model': ...} (DeiT, official MixPro, PVT v1)",
               "model_ema": "DeiT-style train checkpoint, EMA weights ('model_ema')",
               "module": "{'module': ...}", None: "bare state dict"}
_NAMES = {"vit": "timm ViT names", "pvt": "official PVT v1 names", "ca-swin": "CA-Swin names"}


def detect_architecture(state: Dict[str, Any]) -> str:
    """'vit' (timm ``VisionTransformer`` names), 'pvt' (official PVT v1 names) or 'ca-swin' (our CA-Swin: timm
    Swin stages + ``blocks_token_only``); ValueError otherwise."""
    if "blocks.0.attn.qkv.weight" in state:
        return "vit"
    if "block1.0.attn.q.weight" in state:
        return "pvt"
    if "blocks_token_only.0.attn.q.weight" in state and "layers.0.blocks.0.attn.qkv.weight" in state:
        return "ca-swin"
    if any(k.startswith("layers.") for k in state):
        raise ValueError("the checkpoint is already in mmseg/mmdet format (keys 'layers.*'); nothing to convert")
    sample = ", ".join(sorted(state)[:6])
    raise ValueError(f"unknown architecture: neither 'blocks.0.attn.qkv.weight' (vit) nor "
                     f"'block1.0.attn.q.weight' (pvt) found; keys start with: {sample}")


@dataclass
class CheckpointSource:
    """A checkpoint read into classifier names: ``state`` (backbone tensors), ``dropped`` (keys left out: outside
    ``backbone.``, non-tensor entries), the ``layout`` detected (container, names, patch size) and ``notes``."""

    path: str
    layout: str
    state: Dict[str, torch.Tensor]
    dropped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _names(state: Dict[str, Any]) -> str:
    try:
        arch = detect_architecture(state)
    except ValueError:
        return "names of no converter (neither ViT nor PVT v1)"
    text = _NAMES[arch]
    if arch == "vit" and "patch_embed.proj.weight" in state:
        proj, pos = state["patch_embed.proj.weight"], state.get("pos_embed")
        text += f", patch {proj.shape[-1]}" + (f", {pos.shape[1]} position entries" if pos is not None else "")
    return text


def classifier_source(checkpoint: Any, path: str, ema: bool = False) -> CheckpointSource:
    """The classifier state inside a loaded ``checkpoint`` (see the module docstring); ``path`` names it in errors."""
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path} holds no state dict of tensors")
    entries = EMA_ENTRIES if ema and not is_mmengine_ema(checkpoint) else PLAIN_ENTRIES
    entry = next((e for e in entries if isinstance(checkpoint.get(e), dict)), None)
    if ema and entry is None:
        raise UserError(f"{path} has no EMA weights (no {' / '.join(map(repr, EMA_ENTRIES))} entry; it holds "
                        f"{', '.join(map(repr, sorted(map(str, checkpoint))[:8]))})")
    obj = checkpoint_state(checkpoint[entry] if entry else checkpoint, path, revise_keys=())
    # non-tensor entries are modules' extra state (e.g. the RL-Mix policy, ``mixer._extra_state``): never backbone
    extra = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    state = {}
    for k, v in obj.items():
        if k not in extra:
            state[next((k[len(p):] for p in _WRAPPER_PREFIXES if k.startswith(p)), k)] = v
    ours = any(k.startswith("backbone.") for k in state)
    dropped = extra
    if ours:
        dropped = sorted([k for k in state if not k.startswith("backbone.")] + extra)
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        container = "MixPro suite checkpoint ('state_dict', MixClassifier keys)"
    elif path.endswith(".safetensors"):
        container = "safetensors (timm hub format)"
    else:
        container = _CONTAINERS[entry]
    note = ema_note(checkpoint, path, ema)
    return CheckpointSource(path, f"{container}, {_names(state)}", state, dropped, [note] if note else [])


def is_mmengine_ema(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` was saved with mmengine's EMAHook (``state_dict`` = the averaged weights)."""
    return isinstance(checkpoint, dict) and isinstance(checkpoint.get(MMENGINE_EMA), dict)


def ema_note(checkpoint: Any, path: str, ema: bool) -> Optional[str]:
    """One line when a weight copy of ``checkpoint`` goes unused: its EMA weights (timm's ``state_dict_ema``,
    DeiT's ``model_ema``) when ``ema`` is off, or, for an EMAHook checkpoint, which copy its ``state_dict`` is."""
    if is_mmengine_ema(checkpoint):
        return (f"{path} was saved with EMAHook: its state_dict holds the EMA (averaged) weights, which are used; the "
                f"raw weights ('{MMENGINE_EMA}') are not")
    other = [e for e in EMA_ENTRIES if isinstance(checkpoint, dict) and isinstance(checkpoint.get(e), dict)]
    if other and not ema:
        return (f"{path} also holds EMA weights ('{other[0]}'), which are not used: --ema (pretrained: ema=True) "
                f"reads those")
    return None


def read_checkpoint_source(path: str, ema: bool = False) -> CheckpointSource:
    """Read ``path`` weights-only and return its classifier state (:func:`classifier_source`)."""
    return classifier_source(load_checkpoint_file(path, map_location="cpu"), path, ema)


def load_source_strict(module: torch.nn.Module, source: CheckpointSource, partial: Sequence[str] = (),
                       prefix: str = "", convert: Optional[Callable[[dict], dict]] = None) -> LoadReport:
    """Load ``source``'s state into ``module`` strictly (:func:`~classification.foundation.checkpoints.
    load_state_dict_strict` with ``partial``), its notes (an EMA copy that goes unused) logged as warnings first;
    ``convert`` renames the state (another code base's names to ours), ``prefix`` goes before every key
    (``'backbone.'``: into a MixClassifier's backbone)."""
    for note in source.notes:
        print_log(note, logger="current", level=logging.WARNING)
    state = convert(source.state) if convert is not None else source.state
    if prefix:
        state = {prefix + k: v for k, v in state.items()}
    return load_state_dict_strict(module, state, source.path, partial)

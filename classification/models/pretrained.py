"""Loading a local checkpoint into a classifier (no downloads): our own checkpoints, timm / DeiT / MixPro / PVT
releases (:mod:`classification.foundation.checkpoint_sources`) or plain state dicts, strictly
(:mod:`classification.foundation.checkpoints`): a backbone's ``pretrained=`` (:func:`load_pretrained`) and a
config's classifier with a checkpoint's weights (:func:`load_classifier`, for evaluation and figures); both through
:func:`classification.foundation.checkpoint_sources.load_source_strict`, as is the Runner's ``load_from`` of a
classifier file."""
from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Tuple, Union

import torch
from mmengine.registry import MODELS

from classification.foundation.checkpoint_sources import load_source_strict, read_checkpoint_source
from classification.foundation.checkpoints import LoadReport
from classification.foundation.errors import UserError


def read_backbone_state(path: str, ema: bool = False) -> Tuple[dict, List[str]]:
    """``(state, dropped)``: the backbone tensors of the checkpoint at ``path`` and the keys left out.

    Any layout of :mod:`classification.foundation.checkpoint_sources` (our mmengine checkpoint, timm's ``state_dict`` /
    ``state_dict_ema`` and safetensors, ``{'model': ...}`` releases, a bare state dict), read weights-only;
    ``module.``/``model.`` prefixes are stripped; when keys carry our wrapper's ``backbone.`` prefix, only those are
    kept (prefix stripped) and the others are returned in ``dropped``, as are non-tensor entries (modules' extra
    state). ``ema``: the EMA entry. Raises FileNotFoundError for a missing file and ValueError (one line, naming
    ``path``) for anything that is not one.
    """
    source = read_checkpoint_source(path, ema)
    return source.state, source.dropped


def read_state_dict(path: str, ema: bool = False) -> dict:
    """The backbone state dict of ``path`` (see :func:`read_backbone_state`)."""
    return read_backbone_state(path, ema)[0]


def load_pretrained(model: torch.nn.Module, pretrained: Union[str, Mapping],
                    convert: Optional[Callable[[dict], dict]] = None) -> LoadReport:
    """Load a classifier's ``pretrained=`` weights into ``model``, strictly
    (:func:`classification.foundation.checkpoints.load_state_dict_strict`): a key missing, left over or of another
    shape is a :class:`~classification.foundation.checkpoints.CheckpointMismatchError` naming it and both shapes.

    ``pretrained``: a checkpoint path (any layout of :mod:`classification.foundation.checkpoint_sources`), or
    ``dict(checkpoint=PATH, partial=[patterns], ema=False)``: ``partial`` leaves the matching model keys at their
    initial values (e.g. ``partial=['head']`` for a head of another number of classes), ``ema=True`` reads the
    file's EMA weights (timm's ``state_dict_ema``, DeiT's ``model_ema``; an EMA copy left unused is said in one line).
    ``convert``
    renames the read state dict first (e.g. another code base's parameter names to ours).
    """
    if isinstance(pretrained, Mapping):
        unknown = sorted(set(pretrained) - {"checkpoint", "partial", "ema"})
        if unknown or "checkpoint" not in pretrained:
            raise UserError(f"pretrained={dict(pretrained)!r}: expected a path or dict(checkpoint=PATH, "
                            f"partial=[key patterns], ema=False)")
        path, partial, ema = pretrained["checkpoint"], pretrained.get("partial") or (), bool(pretrained.get("ema"))
    else:
        path, partial, ema = pretrained, (), False
    return load_source_strict(model, read_checkpoint_source(path, ema), partial, convert=convert)


def load_classifier(cfg, checkpoint: str, ema: bool = False) -> torch.nn.Module:
    """The config's model with the checkpoint's weights (``ema``: its EMA weights), in eval mode, on the CPU.

    The checkpoint is read weights-only (:func:`classification.foundation.checkpoint_sources.read_checkpoint_source`:
    mmengine checkpoints, timm / ``{'model': ...}`` releases or bare state dicts, DDP/EMA prefixes stripped; a
    file whose EMA copy goes unused says so in one line) and loaded strictly into the backbone
    (:func:`classification.foundation.checkpoints.load_state_dict_strict`): a checkpoint of another architecture is a
    CheckpointMismatchError naming the keys and shapes."""
    model = MODELS.build(cfg.model)
    load_source_strict(getattr(model, "backbone", model), read_checkpoint_source(checkpoint, ema))
    return model.eval()

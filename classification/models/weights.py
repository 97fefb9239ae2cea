"""Loading a local checkpoint into a classifier (no downloads): our own checkpoints or plain state dicts, strictly
(:mod:`classification.checkpoints`)."""
from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Tuple, Union

import torch

from classification.checkpoints import LoadReport, checkpoint_state, load_state_dict_strict
from classification.engine import load_checkpoint_file
from classification.errors import UserError

_WRAPPER_PREFIXES = ("module.", "model.")  # DDP / EMA wrappers, stripped first


def read_backbone_state(path: str) -> Tuple[dict, List[str]]:
    """``(state, dropped)``: the backbone tensors of the checkpoint at ``path`` and the keys left out.

    Accepts an mmengine checkpoint (``state_dict``), ``{'model': ...}``, ``{'module': ...}`` or a bare state dict,
    read weights-only through :func:`classification.engine.load_checkpoint_file` (so the message hub of a Runner
    checkpoint loads). ``module.``/``model.`` prefixes are stripped; when keys carry our wrapper's ``backbone.``
    prefix, only those are kept (prefix stripped) and the others are returned in ``dropped``, as are non-tensor
    entries (modules' extra state).
    Raises FileNotFoundError for a missing file and ValueError (one line, naming ``path``) for anything that is not
    one.
    """
    obj = checkpoint_state(load_checkpoint_file(path, map_location="cpu"), path, revise_keys=())
    # non-tensor entries are modules' extra state (e.g. the RL-Mix policy, ``mixer._extra_state``): never backbone
    extra = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    state = {}
    for k, v in obj.items():
        if k in extra:
            continue
        for p in _WRAPPER_PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        state[k] = v
    if not any(k.startswith("backbone.") for k in state):
        return state, extra
    kept = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return kept, sorted([k for k in state if not k.startswith("backbone.")] + extra)


def read_state_dict(path: str) -> dict:
    """The backbone state dict of ``path`` (see :func:`read_backbone_state`)."""
    return read_backbone_state(path)[0]


def load_pretrained(model: torch.nn.Module, pretrained: Union[str, Mapping],
                    convert: Optional[Callable[[dict], dict]] = None) -> LoadReport:
    """Load a classifier's ``pretrained=`` weights into ``model``, strictly
    (:func:`classification.checkpoints.load_state_dict_strict`): a key missing, left over or of another shape is a
    :class:`~classification.checkpoints.CheckpointMismatchError` naming it and both shapes.

    ``pretrained``: a checkpoint path, or ``dict(checkpoint=PATH, partial=[patterns])`` to leave the matching model
    keys at their initial values (e.g. ``partial=['head']`` for a head of another number of classes). ``convert``
    renames the read state dict first (e.g. another code base's parameter names to ours).
    """
    if isinstance(pretrained, Mapping):
        unknown = sorted(set(pretrained) - {"checkpoint", "partial"})
        if unknown or "checkpoint" not in pretrained:
            raise UserError(f"pretrained={dict(pretrained)!r}: expected a path or dict(checkpoint=PATH, "
                            f"partial=[key patterns])")
        path, partial = pretrained["checkpoint"], pretrained.get("partial") or ()
    else:
        path, partial = pretrained, ()
    state = read_state_dict(path)
    if convert is not None:
        state = convert(state)
    return load_state_dict_strict(model, state, path, partial)

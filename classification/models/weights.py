"""Loading a local checkpoint into a classifier (no downloads): our own checkpoints or plain state dicts."""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from mmengine.logging import print_log

from classification.engine import load_checkpoint_file

_WRAPPER_PREFIXES = ("module.", "model.")  # DDP / EMA wrappers, stripped first


def read_backbone_state(path: str) -> Tuple[dict, List[str]]:
    """``(state, dropped)``: the backbone tensors of the checkpoint at ``path`` and the keys left out.

    Accepts an mmengine checkpoint (``state_dict``), ``{'model': ...}``, ``{'module': ...}`` or a bare state dict,
    read weights-only through :func:`classification.engine.load_checkpoint_file` (so the message hub of a Runner
    checkpoint loads). ``module.``/``model.`` prefixes are stripped; when keys carry our wrapper's ``backbone.``
    prefix, only those are kept (prefix stripped) and the others are returned in ``dropped``, as are non-tensor
    entries (modules' extra state).
    Raises FileNotFoundError for a missing file and ValueError naming ``path`` for anything that is not one.
    """
    try:
        obj = load_checkpoint_file(path, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle / zip / weights-only errors: not a checkpoint
        raise ValueError(f"{path} is not a readable torch checkpoint: {err}") from err
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
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


def load_pretrained(model: torch.nn.Module, path: str, convert: Optional[Callable[[dict], dict]] = None) -> None:
    """Load ``path`` into ``model``; tensors whose shape differs (e.g. a head for other classes) are skipped.
    ``convert`` renames the read state dict first (e.g. another code base's parameter names to ours).

    Raises ValueError when nothing matches (wrong architecture); logs skipped / missing keys.
    """
    state = read_state_dict(path)
    if convert is not None:
        state = convert(state)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no parameter matches {type(model).__name__} (wrong architecture?)")
    missing, _ = model.load_state_dict(usable, strict=False)
    skipped = sorted(set(state) - set(usable))
    print_log(f"loaded {len(usable)} tensors from {path}; skipped {len(skipped)} {skipped[:8]}; "
              f"missing {len(missing)} {list(missing)[:8]}", logger="current")

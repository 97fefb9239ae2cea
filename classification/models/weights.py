"""Loading a local checkpoint into a classifier (no downloads): our own checkpoints or plain state dicts."""
from __future__ import annotations

import os

import torch
from mmengine.logging import print_log

_PREFIXES = ("backbone.", "module.", "model.")


def read_state_dict(path: str) -> dict:
    """The tensor state dict inside ``path`` (mmengine checkpoint, ``{'model': ...}`` or a bare state dict).

    Loaded with ``weights_only=True``; prefixes of our wrapper / DDP (``backbone.``, ``module.``) are stripped.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle / zip errors: not a checkpoint
        raise ValueError(f"{path} is not a readable torch checkpoint: {err}") from err
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
    state = {}
    for k, v in obj.items():
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        state[k] = v
    return state


def load_pretrained(model: torch.nn.Module, path: str) -> None:
    """Load ``path`` into ``model``; tensors whose shape differs (e.g. a head for other classes) are skipped.

    Raises ValueError when nothing matches (wrong architecture); logs skipped / missing keys.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no parameter matches {type(model).__name__} (wrong architecture?)")
    missing, _ = model.load_state_dict(usable, strict=False)
    skipped = sorted(set(state) - set(usable))
    print_log(f"loaded {len(usable)} tensors from {path}; skipped {len(skipped)} {skipped[:8]}; "
              f"missing {len(missing)} {list(missing)[:8]}", logger="current")

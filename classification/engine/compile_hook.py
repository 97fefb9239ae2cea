"""``torch.compile`` of the classifier's backbone only (``tools/train.py --compile``).

mmengine's own ``cfg.compile`` compiles the model's whole ``train_step``: data preprocessing, the mixing draws on a
CPU generator, the label policy, the loss reduction with its non-finite guard and the optimiser wrapper — code full
of host-side control flow that would only break the graph. Compiling the backbone module in place
(``nn.Module.compile``) keeps the parameter names, checkpoints and hooks as they are, and the mixing, labels and
optimiser run eagerly around it. The CLS-attention capture of the attention label policies (a forward hook on the last
block's ``qkv``) is traced into the compiled graph.

Config: ``custom_hooks = [..., dict(type='CompileBackboneHook', options=dict(mode=None))]`` (what ``--compile``
adds); ``options`` go to ``torch.compile``. The first iterations are slow while the graphs compile.
"""
from __future__ import annotations

from typing import Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ["compile_backbone", "CompileBackboneHook"]


def compile_backbone(model: nn.Module, **options) -> nn.Module:
    """Compile ``model.backbone`` in place (``model`` may be DDP-wrapped) with ``torch.compile`` ``options``;
    returns the backbone. ValueError when the model has no ``backbone``."""
    inner = model.module if is_model_wrapper(model) else model
    backbone = getattr(inner, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise ValueError(f"--compile compiles model.backbone, but {type(inner).__name__} has none")
    backbone.compile(**options)
    return backbone


@HOOKS.register_module()
class CompileBackboneHook(Hook):
    """Before training, compile the backbone of the Runner's model (:func:`compile_backbone`)."""

    priority = "VERY_HIGH"

    def __init__(self, options: Optional[dict] = None):
        self.options = dict(options or {})

    def before_train(self, runner) -> None:
        backbone = compile_backbone(runner.model, **self.options)
        print_log(f"torch.compile({type(backbone).__name__}, {self.options}): the first iterations compile the "
                  f"graphs", logger="current")

"""Weight initialisation shared by the classifiers built here (CCT, PVT, MS-MLP)."""
from __future__ import annotations

from typing import Callable, Tuple, Type

import torch.nn as nn
from timm.layers import trunc_normal_


def init_transformer_weights(m: nn.Module, truncated: Tuple[Type[nn.Module], ...] = (nn.Linear,),
                             trunc_normal: Callable = trunc_normal_) -> None:
    """The usual transformer initialisation of one module (use with ``model.apply``).

    Modules of the ``truncated`` types (Linear by default): weight ~ N(0, 0.02²) truncated to [-2, 2], drawn by
    ``trunc_normal`` (timm's inverse-CDF sampler by default; ``torch.nn.init.trunc_normal_`` draws the same
    distribution by rejection sampling, so other numbers for a given seed), bias 0.
    LayerNorm (and subclasses): weight 1, bias 0. Other modules are left alone, for the caller to handle.
    """
    if isinstance(m, truncated):
        trunc_normal(m.weight, std=.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)

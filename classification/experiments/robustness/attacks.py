"""The L∞ attacks of the ``fgsm`` / ``pgd`` robustness suites (:mod:`classification.experiments.robustness.evaluate`),
in [0, 1] pixel space against the true labels.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fgsm", "pgd"]


def _input_grad(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d(summed cross-entropy)/d(images); only the input gets a gradient (parameters' .grad stay untouched)."""
    with torch.enable_grad():
        x = images.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x).float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """One L∞ step of size ``eps`` along the sign of the loss gradient, clamped to [0, 1]. images (B,C,H,W) in
    pixel space, labels (B,) true labels; ``model`` maps pixels to logits (e.g. a :class:`NormalizedModel`)."""
    grad = _input_grad(model, images, labels)
    return (images.detach() + eps * grad.sign()).clamp_(0, 1)


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, alpha: Optional[float] = None,
        steps: int = 10, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """L∞ PGD: start uniformly in the ε-ball (``generator``, CPU), ``steps`` signed-gradient steps of ``alpha``
    (default ε/4), each followed by projection onto the ε-ball around ``images`` and clamping to [0, 1]."""
    alpha = eps / 4 if alpha is None else alpha
    clean = images.detach()
    noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
    adv = (clean + (2 * noise - 1) * eps).clamp_(0, 1)
    for _ in range(steps):
        adv = adv + alpha * _input_grad(model, adv, labels).sign()
        adv = torch.min(torch.max(adv, clean - eps), clean + eps).clamp_(0, 1)
    return adv

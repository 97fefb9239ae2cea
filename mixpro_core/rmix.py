"""R-Mix (Luu et al., AAAI 2023 Practical-DL workshop): saliency-guided mixing with a random saliency threshold
(docs/methods.md, "R-Mix and RL-Mix").

:func:`rmix` (registered as 'rmix') takes images (B,C,H,W) on any device, labels (B,) or soft targets (B,K) and the
model: one eval-mode input-gradient pass of the clean batch (:func:`input_saliency`; parameter gradients, training
flags and normalisation statistics untouched) gives the pixel saliency, pooled to a g×g grid (:func:`cell_saliency`).
Each image's cells at or above its q-quantile are salient (:func:`salient_cells`; q drawn from :data:`QUANTILES`);
:func:`rmix_from_cells` blends λ·x_a + (1−λ)·x_b where both images agree and takes the salient image's pixel where
they do not, and returns a :class:`MixBatch` whose ``lam_area`` is **λ_eff = A_eq·λ + A_a** (the pixel fractions), so
the ordinary area labels give the R-Mix label. All randomness comes from the given generator.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mixing import MixBatch, random_partner, sample_beta
from .registry import MIXERS

QUANTILES = tuple(round(0.11 * k, 2) for k in range(10))  # 0, 0.11, …, 0.99 (the paper's grid of thresholds)
GRIDS = (2, 4)

__all__ = ["QUANTILES", "GRIDS", "input_saliency", "cell_saliency", "salient_cells", "rmix_from_cells", "rmix",
           "region_fractions"]


# ------------------------------------------------------------------------------------------------------ saliency
def _check_labels(labels: torch.Tensor, batch_size: int, num_classes: Optional[int]) -> None:
    if labels.dim() == 1:
        if labels.shape[0] != batch_size:
            raise ValueError(f"labels {tuple(labels.shape)} do not match a batch of {batch_size} images")
        if labels.is_floating_point():
            raise ValueError("integer class labels (B,) or soft targets (B,K) expected, got floating labels of shape "
                             f"{tuple(labels.shape)}")
        if num_classes is not None and labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}), got min {int(labels.min())}, "
                             f"max {int(labels.max())}")
    elif labels.dim() == 2:
        if labels.shape[0] != batch_size or (num_classes is not None and labels.shape[1] != num_classes):
            raise ValueError(f"soft targets {tuple(labels.shape)} do not match ({batch_size}, {num_classes or 'K'})")
    else:
        raise ValueError(f"labels must be class ids (B,) or soft targets (B,K), got shape {tuple(labels.shape)}")


def input_saliency(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, return_logits: bool = False):
    """(B,H,W) R-Mix pixel saliency: RMS over channels of ∂CE(model(x), labels)/∂x on the clean batch.

    One forward + backward with respect to the input only (``torch.autograd.grad``): parameter ``.grad`` stays as it
    was. The pass runs in eval mode (no dropout / drop path, BatchNorm uses and does not update its running
    statistics); every submodule's own training flag is restored afterwards. ``labels`` are class ids (B,) or soft
    targets (B,K). The CE is summed over the batch, so one image's saliency does not depend on the batch size.
    The pass runs in fp32 with autocast off, so under fp16 / bf16 training small input gradients neither underflow
    nor get rounded. ``return_logits`` → ``(saliency, logits (B,K) detached)``.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.enable_grad(), torch.autocast(images.device.type, enabled=False):
            x = images.detach().requires_grad_(True)
            logits = model(x)
            target = labels.to(logits.device)
            target = target.float() if target.dim() == 2 else target.long()
            loss = F.cross_entropy(logits.float(), target, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
    finally:
        for module, flag in flags:
            module.training = flag
    saliency = grad.float().pow(2).mean(dim=1).sqrt()
    return (saliency, logits.detach()) if return_logits else saliency


def _cell_index(size: int, grid: int, device) -> torch.Tensor:
    """(size,) cell index of each row/column: ``grid`` near-equal, contiguous, non-overlapping bands."""
    return torch.arange(size, device=device) * grid // size


def cell_saliency(saliency: torch.Tensor, grid: int) -> torch.Tensor:
    """(B,H,W) pixel saliency → (B,grid,grid) mean saliency per cell, normalised to sum 1 per image.

    Cells are contiguous, non-overlapping bands of ⌊·⌋-split rows and columns, the same bands the mixing uses
    (:func:`rmix_from_cells`). When ``grid`` divides H and W this is ``F.adaptive_avg_pool2d``; otherwise that
    function's bins overlap (a border row counts in two cells) and no longer match the pixels a cell mixes, so the
    pooling is written out here."""
    b, h, w = saliency.shape
    if grid < 1 or grid > min(h, w):
        raise ValueError(f"grid must be in [1, {min(h, w)}] for {h}x{w} images, got {grid}")
    rows = F.one_hot(_cell_index(h, grid, saliency.device), grid).to(saliency.dtype)  # (H,g)
    cols = F.one_hot(_cell_index(w, grid, saliency.device), grid).to(saliency.dtype)  # (W,g)
    sums = torch.einsum("hg,bhw,wk->bgk", rows, saliency, cols)
    cells = sums / (rows.sum(0)[:, None] * cols.sum(0)[None, :])
    return cells / cells.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def salient_cells(cells: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(B,g,g) bool: cells at or above their image's q-quantile (``torch.quantile``, linear interpolation).

    ``q`` (B,) in [0, 1]: q = 0 marks every cell salient, q → 1 only the most salient one(s)."""
    b = cells.shape[0]
    flat = cells.reshape(b, -1)
    # every image's quantiles at every q (B_q, B), then image i's own q_i: the diagonal
    threshold = torch.quantile(flat, q.to(flat.device, flat.dtype).clamp(0, 1), dim=1).diagonal()[:, None]
    return (flat >= threshold).reshape(cells.shape)


def _to_pixels(cells: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B,g,g) → (B,1,H,W) by the same bands as :func:`cell_saliency`."""
    g = cells.shape[1]
    rows, cols = _cell_index(h, g, cells.device), _cell_index(w, g, cells.device)
    return cells[:, rows][:, :, cols].unsqueeze(1)


def region_fractions(own_salient: torch.Tensor, partner_salient: torch.Tensor):
    """(A_eq, A_a, A_b), each (B,): pixel fractions where both/neither are salient, only the own image, only the
    partner; (B,1,H,W) or (B,H,W) bool maps. A_eq + A_a + A_b = 1."""
    own, other = own_salient.bool().flatten(1), partner_salient.bool().flatten(1)
    a_eq = (own == other).float().mean(1)
    a_own = (own & ~other).float().mean(1)
    a_partner = (~own & other).float().mean(1)
    return a_eq, a_own, a_partner


def rmix_from_cells(images: torch.Tensor, salient: torch.Tensor, partner: torch.Tensor, lam: float) -> MixBatch:
    """The deterministic core of R-Mix: mix ``images`` (B,C,H,W) with ``images[partner]`` given the salient cells
    (B,g,g) bool of every image and the batch λ.

    ``pixel_mask`` is the own-pixel weight map W (B,1,H,W): 1 where only the own image is salient, 0 where only the
    partner is, λ where they agree; x̃ = W·x + (1−W)·x[partner] and ``lam_area`` = mean(W) = A_eq·λ + A_a (λ_eff).
    ``token_mask`` is None (cells need not align with tokens, and agreement pixels belong to both images)."""
    b, _, h, w = images.shape
    own = _to_pixels(salient, h, w)
    other = own[partner]
    weight = torch.where(own == other, torch.full_like(own, lam, dtype=images.dtype), own.to(images.dtype))
    mixed = weight * images + (1 - weight) * images[partner]
    return MixBatch(mixed, partner, weight.mean(dim=(1, 2, 3)), weight, None, "rmix")


@MIXERS.register("rmix")
def rmix(images: torch.Tensor, labels: torch.Tensor, model: nn.Module, alpha: float = 1.0,
         grid: Optional[int] = None, generator: Optional[torch.Generator] = None, num_classes: Optional[int] = None,
         grids: Sequence[int] = GRIDS, quantiles: Sequence[float] = QUANTILES) -> MixBatch:
    """R-Mix one batch (kind 'rmix'); see the module docstring.

    images (B,C,H,W) on any device; labels (B,) class ids or (B,K) soft targets; ``model`` maps images to logits.
    ``grid`` fixes g, otherwise g is drawn from ``grids`` per batch; q is drawn per image from ``quantiles``;
    λ ~ Beta(α, α) per batch (:func:`sample_beta`) and the partner is :func:`random_partner` — all from ``generator``.
    Returns a :class:`MixBatch` whose ``lam_area`` is λ_eff = A_eq·λ + A_a, so area labels are the R-Mix labels.
    Registered as mixer 'rmix' (options alpha, grid, num_classes, grids, quantiles); the schedule's probability of
    the entry replaces the old ``prob`` and the schedule's other entries are the fallback.
    """
    check_mixer_args("R-Mix", alpha, grid)
    if images.dim() != 4:
        raise ValueError(f"images must be (B,C,H,W), got shape {tuple(images.shape)}")
    b, device = images.shape[0], images.device
    _check_labels(labels, b, num_classes)
    gen_device = generator.device if generator is not None else device
    partner = random_partner(b, generator, device)
    lam = sample_beta(alpha, generator)
    if grid is None:
        grid = grids[int(torch.randint(len(grids), (), generator=generator, device=gen_device))]
    choice = torch.randint(len(quantiles), (b,), generator=generator, device=gen_device).to(device)
    q = torch.tensor(list(quantiles), device=device)[choice]
    cells = cell_saliency(input_saliency(model, images, labels), grid)
    return rmix_from_cells(images, salient_cells(cells, q), partner, lam)


def check_mixer_args(name: str, alpha: float, grid: Optional[int]) -> None:
    """ValueError naming ``name`` for a bad Beta α or cell grid (R-Mix and RL-Mix)."""
    if alpha <= 0:
        raise ValueError(f"{name} alpha must be > 0, got {alpha}")
    if grid is not None and grid < 1:
        raise ValueError(f"{name} grid must be a positive number of cells per side, got {grid}")

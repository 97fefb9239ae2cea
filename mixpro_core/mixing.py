"""Image-space mixers: Mixup, CutMix, MaskMix, ResizeMix (docs/methods.md, "Mixup", "CutMix", "MaskMix", "ResizeMix").

Every mixer takes a batch ``images`` (B,C,H,W) and returns a :class:`MixBatch`. All randomness comes from the optional
``torch.Generator``: the draws are made on the generator's device (the host for the CPU generator the classifier
uses) and only the final small tensors (partner, masks) are moved to the images' device, once; the pixel work is
batched tensor work on the images' device (no per-sample Python loops). A seeded generator reproduces a batch
exactly. Each mixer is registered under its name in :data:`~mixpro_core.registry.MIXERS` (see
:mod:`mixpro_core.schedule`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .registry import MIXERS


@dataclass
class MixBatch:
    """A mixed batch and everything the label policies need to know about it.

    images:      (B,C,H,W) mixed images.
    partner:     (B,) long, index of the sample each one is mixed with (a permutation of the batch).
    lam_area:    (B,) float, fraction of each sample's pixels that are its own.
    pixel_mask:  (B,1,H,W) float, own-pixel weight: {0,1} for region mixers (1 = own pixel), in [0,1] for R-Mix;
                 None for Mixup / no mixing.
    token_mask:  (B,N) float in {0,1}, 1 = token whose pixels are own (a token takes its top-left pixel's value);
                 None when the mixer has no own/partner split per token. Attention labels (TransMix) apply exactly
                 to the batches that carry one.
    kind:        the mixer's name ('none', 'mixup', 'cutmix', 'maskmix', 'resizemix', 'rmix', ...), for logs.
    token_exact: True when the mixer guarantees by construction that every token's pixels come from one image
                 (MaskMix; ResizeMix with ``align=True``): PAL's attention labels apply to these batches only.
    stats:       scalars the mixer reports for the training log (e.g. RL-Mix's mean q); never summed into the loss.
    """

    images: torch.Tensor
    partner: torch.Tensor
    lam_area: torch.Tensor
    pixel_mask: Optional[torch.Tensor]
    token_mask: Optional[torch.Tensor]
    kind: str
    token_exact: bool = False
    stats: Dict[str, torch.Tensor] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- random helpers
def _draw_device(generator: Optional[torch.Generator]) -> torch.device:
    """Where draws are made: the generator's device, the host without one."""
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(shape, generator: Optional[torch.Generator]) -> torch.Tensor:
    """U[0,1) of ``shape`` drawn from ``generator`` on its own device (the host for a CPU generator)."""
    return torch.rand(shape, generator=generator, device=_draw_device(generator))


def _randint(high: int, generator: Optional[torch.Generator]) -> int:
    """One integer uniform in [0, high) from ``generator`` (a Python int)."""
    return int(torch.randint(high, (), generator=generator, device=_draw_device(generator)))


def sample_beta(alpha: float, generator: Optional[torch.Generator] = None) -> float:
    """λ ~ Beta(alpha, alpha) as a Python float, reproducible under ``generator``.

    torch's Beta/Gamma samplers cannot take a generator, so the draw is numpy's ``Generator.beta`` seeded by one
    63-bit integer drawn from ``generator`` (one draw per call).
    """
    if alpha <= 0:
        raise ValueError(f"Beta concentration alpha must be > 0, got {alpha}")
    seed = int(torch.randint(2 ** 63 - 1, (), generator=generator, device=_draw_device(generator)))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """A host tensor on ``device``; to a CUDA device through pinned memory, asynchronously (a pageable copy would make
    the host wait for the device)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def random_partner(batch_size: int, generator: Optional[torch.Generator] = None, device="cpu") -> torch.Tensor:
    """(B,) long permutation on ``device`` with no fixed point: a random single cycle, so no sample is mixed with
    itself."""
    if batch_size < 2:
        raise ValueError(f"mixing needs a batch of at least 2 samples, got batch size {batch_size}")
    order = torch.randperm(batch_size, generator=generator, device=_draw_device(generator))
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    return _to_device(partner, device)


def _mix_images(images: torch.Tensor, partner: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """x·M + x[partner]·(1−M) for a {0,1} mask M broadcast over channels, as one selection (exact, one pass)."""
    return torch.where(pixel_mask.bool(), images, images[partner])


def token_mask_from_pixels(pixel_mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B,1,H,W) pixel mask → (B,N) token mask, a token taking the value of its top-left pixel (as TransMix does).

    H and W must be multiples of ``patch_size``; N = (H/p)·(W/p) in row-major order, the order of ViT patch tokens.
    """
    h, w = pixel_mask.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch_size={patch_size}")
    return pixel_mask[:, 0, ::patch_size, ::patch_size].flatten(1)


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be (B,C,H,W), got shape {tuple(images.shape)}")


def _box_batch(images, partner, pasted, box, patch_size, kind, token_exact=False) -> MixBatch:
    """One box (y0, y1, x0, x1) of every image replaced by ``pasted`` (B,C,y1−y0,x1−x0): the region mixers' batch."""
    b, _, h, w = images.shape
    y0, y1, x0, x1 = box
    mask = torch.ones((1, 1, h, w), device=images.device)
    mask[..., y0:y1, x0:x1] = 0.0
    pixel_mask = mask.expand(b, 1, h, w)
    mixed = images.clone()
    mixed[..., y0:y1, x0:x1] = pasted
    lam_area = torch.full((b,), 1.0 - (y1 - y0) * (x1 - x0) / (h * w), device=images.device)
    token_mask = token_mask_from_pixels(pixel_mask, patch_size) if patch_size else None
    return MixBatch(mixed, partner, lam_area, pixel_mask, token_mask, kind, token_exact)


# ----------------------------------------------------------------------------------------------- mixers
def no_mix(images: torch.Tensor) -> MixBatch:
    """The identity 'mix': every sample keeps all of its pixels (kind 'none')."""
    _check_images(images)
    b = images.shape[0]
    return MixBatch(images, torch.arange(b, device=images.device), torch.ones(b, device=images.device),
                    None, None, "none")


@MIXERS.register("mixup")
def mixup(images: torch.Tensor, alpha: float = 0.8, generator: Optional[torch.Generator] = None) -> MixBatch:
    """Mixup: one λ ~ Beta(α,α) per batch, x̃ = λx + (1−λ)x[partner]; lam_area = λ for every sample."""
    _check_images(images)
    b, device = images.shape[0], images.device
    partner = random_partner(b, generator, device)
    lam = sample_beta(alpha, generator)
    mixed = torch.lerp(images[partner], images, lam)  # λx + (1−λ)x[partner] in one pass
    return MixBatch(mixed, partner, torch.full((b,), lam, device=device), None, None, "mixup")


@MIXERS.register("cutmix")
def cutmix(images: torch.Tensor, alpha: float = 1.0, patch_size: Optional[int] = None,
           generator: Optional[torch.Generator] = None) -> MixBatch:
    """CutMix: one box per batch pasted from the partner.

    λ ~ Beta(α,α); box sides ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ around a uniform integer centre, clipped to the image;
    lam_area is the exact kept-pixel fraction after clipping. With ``patch_size`` the token mask is filled too.
    """
    _check_images(images)
    b, _, h, w = images.shape
    partner = random_partner(b, generator, images.device)
    lam = sample_beta(alpha, generator)
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy, cx = (int(u * side) for u, side in zip(_uniform((2,), generator).tolist(), (h, w)))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    return _box_batch(images, partner, images[..., y0:y1, x0:x1][partner], (y0, y1, x0, x1), patch_size, "cutmix")


@MIXERS.register("resizemix")
def resizemix(images: torch.Tensor, scale: Sequence[float] = (0.1, 0.8), patch_size: Optional[int] = None,
              align: bool = False, interpolation: str = "bilinear",
              generator: Optional[torch.Generator] = None) -> MixBatch:
    """ResizeMix (Qin et al. 2020): the whole partner image, resized, pasted into one random box per batch.

    A scale τ ~ U[scale[0], scale[1]] per batch gives a box of ⌊τ·H⌋ × ⌊τ·W⌋ pixels (at least 1) at a uniform
    integer position fully inside the image; every image gets its partner resized to the box with ``interpolation``
    (``F.interpolate`` mode: 'bilinear' by default, or 'bicubic' / 'nearest' / 'area'; align_corners=False, no
    antialiasing) and pasted there. lam_area = 1 − box area / image area, exactly. With ``patch_size`` the token mask
    is filled (top-left pixel rule); ``align`` snaps the box to the token grid (sides and corner multiples of
    ``patch_size``, at least one token), so every token comes from one image (``token_exact``).
    """
    _check_images(images)
    lo, hi = (float(v) for v in scale)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"resizemix scale must be (min, max) with 0 < min <= max <= 1, got {tuple(scale)}")
    if align and not patch_size:
        raise ValueError("resizemix align=True needs patch_size (the token grid to align the box to)")
    b, _, h, w = images.shape
    if align and (h % patch_size or w % patch_size):
        raise ValueError(f"image size {h}x{w} is not a multiple of patch_size={patch_size}")
    partner = random_partner(b, generator, images.device)
    tau = lo + (hi - lo) * float(_uniform((), generator))
    unit = patch_size if align else 1
    box_h = max(unit, int(tau * h) // unit * unit)
    box_w = max(unit, int(tau * w) // unit * unit)
    y0 = _randint((h - box_h) // unit + 1, generator) * unit
    x0 = _randint((w - box_w) // unit + 1, generator) * unit
    interp = dict(align_corners=False) if interpolation in ("bilinear", "bicubic") else {}
    pasted = F.interpolate(images[partner], size=(box_h, box_w), mode=interpolation, **interp).to(images.dtype)
    return _box_batch(images, partner, pasted, (y0, y0 + box_h, x0, x0 + box_w), patch_size, "resizemix", align)


@MIXERS.register("maskmix")
def maskmix(images: torch.Tensor, mask_size: int, patch_size: int, alpha: float = 1.0,
            generator: Optional[torch.Generator] = None) -> MixBatch:
    """MaskMix (MixPro's image space): a grid of ``mask_size``-pixel cells, each from the sample or its partner.

    G = ⌈H/mask_size⌉·⌈W/mask_size⌉ cells; one r ~ Beta(α,α) per batch; k = max(1, ⌈G·r⌉) cells are own, chosen
    independently per sample (a random permutation of the cells each). Cells past the image border are cropped and
    lam_area is the exact own-pixel fraction (k/G when the grid divides the image). ``mask_size`` must be a multiple
    of ``patch_size`` so that every token comes from exactly one image (``token_exact``).
    """
    _check_images(images)
    b, _, h, w = images.shape
    partner = random_partner(b, generator, images.device)
    pixel_mask, token_mask = maskmix_masks(b, h, w, mask_size, patch_size, alpha, generator, images.device)
    lam_area = pixel_mask.mean(dim=(1, 2, 3))
    return MixBatch(_mix_images(images, partner, pixel_mask), partner, lam_area, pixel_mask, token_mask, "maskmix",
                    token_exact=True)


def maskmix_masks(batch_size: int, height: int, width: int, mask_size: int, patch_size: int, alpha: float = 1.0,
                  generator: Optional[torch.Generator] = None, device="cpu",
                  own_cells: Optional[torch.Tensor] = None):
    """The MaskMix masks alone: (pixel_mask (B,1,H,W), token_mask (B,N)) float in {0,1}, 1 = own (see maskmix).

    ``own_cells`` (B,) long: the number of own cells of each sample instead of the batch's Beta draw (pictures at
    chosen λ, ``classification/experiments/visualize.py``); the cells are still chosen at random."""
    if mask_size <= 0 or patch_size <= 0:
        raise ValueError(f"mask_size and patch_size must be positive, got mask_size={mask_size}, "
                         f"patch_size={patch_size}")
    if mask_size % patch_size:
        raise ValueError(f"mask_size={mask_size} is not a multiple of patch_size={patch_size}: MaskMix cells must "
                         f"be whole tokens so that every token comes from exactly one image")
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not a multiple of patch_size={patch_size}")
    rows, cols = math.ceil(height / mask_size), math.ceil(width / mask_size)
    cells = rows * cols
    if own_cells is None:
        k = min(cells, max(1, math.ceil(cells * sample_beta(alpha, generator))))
    else:
        if own_cells.shape != (batch_size,) or not bool(((own_cells >= 0) & (own_cells <= cells)).all()):
            raise ValueError(f"own_cells must be ({batch_size},) counts in 0..{cells}, got {own_cells.tolist()}")
        k = own_cells.view(batch_size, 1).to(_draw_device(generator))
    # rank of each cell in a random per-sample permutation (drawn where the generator is); the k lowest are own.
    rank = _uniform((batch_size, cells), generator).argsort(dim=1).argsort(dim=1)
    cell_mask = _to_device((rank < k).to(torch.float32), device).view(batch_size, 1, rows, cols)
    pixel_mask = _upsample_cells(cell_mask, mask_size, height, width)
    factor = mask_size // patch_size
    token_mask = _upsample_cells(cell_mask, factor, height // patch_size, width // patch_size).flatten(1)
    return pixel_mask, token_mask


def _upsample_cells(cell_mask: torch.Tensor, factor: int, h: int, w: int) -> torch.Tensor:
    """(B,1,r,c) → (B,1,h,w): repeat each cell ``factor`` times per axis, crop at the bottom/right border."""
    return cell_mask.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)[..., :h, :w].contiguous()

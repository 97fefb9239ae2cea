"""Image-space mixers: Mixup, CutMix, MaskMix, and the per-iteration schedule that picks one (SPEC §1).

Every mixer takes a batch ``images`` (B,C,H,W) and returns a :class:`MixBatch`. All randomness comes from the optional
``torch.Generator`` (on the generator's device), so a seeded generator reproduces a batch exactly; all work is
batched tensor work on the images' device (no per-sample Python loops, no numpy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

MIX_KINDS = ("none", "mixup", "cutmix", "maskmix", "rmix")


@dataclass
class MixBatch:
    """A mixed batch and everything the label policies need to know about it.

    images:     (B,C,H,W) mixed images.
    partner:    (B,) long, index of the sample each one is mixed with (a permutation of the batch).
    lam_area:   (B,) float, fraction of each sample's pixels that are its own.
    pixel_mask: (B,1,H,W) float, own-pixel weight: {0,1} for CutMix / MaskMix (1 = own pixel), in [0,1] for R-Mix;
                None for Mixup / no mixing.
    token_mask: (B,N) float in {0,1}, 1 = token whose pixels are own; None when not defined.
    kind:       one of 'none', 'mixup', 'cutmix', 'maskmix', 'rmix'.
    """

    images: torch.Tensor
    partner: torch.Tensor
    lam_area: torch.Tensor
    pixel_mask: Optional[torch.Tensor]
    token_mask: Optional[torch.Tensor]
    kind: str


# ----------------------------------------------------------------------------------------------- random helpers
def _rand_device(generator: Optional[torch.Generator], fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


def _uniform(shape, generator, device) -> torch.Tensor:
    """U[0,1) of ``shape`` on ``device``, drawn from ``generator`` (on its own device) when given."""
    return torch.rand(shape, generator=generator, device=_rand_device(generator, device)).to(device)


def _standard_gamma(shape: float, generator: Optional[torch.Generator], device) -> float:
    """One draw of Gamma(shape, 1) (Marsaglia & Tsang 2000), using only ``generator``'s uniform/normal streams.

    torch.distributions cannot take a generator; this scalar sampler makes every λ reproducible. For shape < 1 the
    boost Gamma(a) = Gamma(a+1)·U^(1/a) is used.
    """
    boost = 1.0
    if shape < 1.0:
        boost = float(_uniform((), generator, device)) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    dev = _rand_device(generator, device)
    while True:
        x = float(torch.randn((), generator=generator, device=dev))
        v = (1.0 + c * x) ** 3
        if v <= 0:
            continue
        u = float(torch.rand((), generator=generator, device=dev))
        if math.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost


def sample_beta(alpha: float, generator: Optional[torch.Generator] = None, device="cpu") -> float:
    """λ ~ Beta(alpha, alpha) as a Python float, reproducible under ``generator``."""
    if alpha <= 0:
        raise ValueError(f"Beta concentration alpha must be > 0, got {alpha}")
    a = _standard_gamma(alpha, generator, device)
    b = _standard_gamma(alpha, generator, device)
    return a / (a + b)


def random_partner(batch_size: int, generator: Optional[torch.Generator] = None, device="cpu") -> torch.Tensor:
    """(B,) long permutation with no fixed point: a random single cycle, so no sample is mixed with itself."""
    if batch_size < 2:
        raise ValueError(f"mixing needs a batch of at least 2 samples, got batch size {batch_size}")
    order = torch.randperm(batch_size, generator=generator, device=_rand_device(generator, device)).to(device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    return partner


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


# ----------------------------------------------------------------------------------------------- mixers
def no_mix(images: torch.Tensor) -> MixBatch:
    """The identity 'mix': every sample keeps all of its pixels (kind 'none')."""
    _check_images(images)
    b = images.shape[0]
    return MixBatch(images, torch.arange(b, device=images.device), torch.ones(b, device=images.device),
                    None, None, "none")


def mixup(images: torch.Tensor, alpha: float = 0.8, generator: Optional[torch.Generator] = None) -> MixBatch:
    """Mixup: one λ ~ Beta(α,α) per batch, x̃ = λx + (1−λ)x[partner]; lam_area = λ for every sample."""
    _check_images(images)
    b, device = images.shape[0], images.device
    partner = random_partner(b, generator, device)
    lam = sample_beta(alpha, generator, device)
    mixed = torch.lerp(images[partner], images, lam)  # λx + (1−λ)x[partner] in one pass
    return MixBatch(mixed, partner, torch.full((b,), lam, device=device), None, None, "mixup")


def cutmix(images: torch.Tensor, alpha: float = 1.0, patch_size: Optional[int] = None,
           generator: Optional[torch.Generator] = None) -> MixBatch:
    """CutMix: one box per batch pasted from the partner.

    λ ~ Beta(α,α); box sides ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ around a uniform integer centre, clipped to the image;
    lam_area is the exact kept-pixel fraction after clipping. With ``patch_size`` the token mask is filled too.
    """
    _check_images(images)
    b, _, h, w = images.shape
    device = images.device
    partner = random_partner(b, generator, device)
    lam = sample_beta(alpha, generator, device)
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    centre = _uniform((2,), generator, device)
    cy, cx = int(centre[0] * h), int(centre[1] * w)
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mask = torch.ones((1, 1, h, w), device=device)
    mask[..., y0:y1, x0:x1] = 0.0
    pixel_mask = mask.expand(b, 1, h, w)
    lam_area = torch.full((b,), 1.0 - (y1 - y0) * (x1 - x0) / (h * w), device=device)
    token_mask = token_mask_from_pixels(pixel_mask, patch_size) if patch_size else None
    return MixBatch(_mix_images(images, partner, pixel_mask), partner, lam_area, pixel_mask, token_mask, "cutmix")


def maskmix(images: torch.Tensor, mask_size: int, patch_size: int, alpha: float = 1.0,
            generator: Optional[torch.Generator] = None) -> MixBatch:
    """MaskMix (MixPro's image space): a grid of ``mask_size``-pixel cells, each from the sample or its partner.

    G = ⌈H/mask_size⌉·⌈W/mask_size⌉ cells; one r ~ Beta(α,α) per batch; k = max(1, ⌈G·r⌉) cells are own, chosen
    independently per sample (a random permutation of the cells each). Cells past the image border are cropped and
    lam_area is the exact own-pixel fraction (k/G when the grid divides the image). ``mask_size`` must be a multiple
    of ``patch_size`` so that every token comes from exactly one image.
    """
    _check_images(images)
    b, _, h, w = images.shape
    partner = random_partner(b, generator, images.device)
    pixel_mask, token_mask = maskmix_masks(b, h, w, mask_size, patch_size, alpha, generator, images.device)
    lam_area = pixel_mask.mean(dim=(1, 2, 3))
    return MixBatch(_mix_images(images, partner, pixel_mask), partner, lam_area, pixel_mask, token_mask, "maskmix")


def maskmix_masks(batch_size: int, height: int, width: int, mask_size: int, patch_size: int, alpha: float = 1.0,
                  generator: Optional[torch.Generator] = None, device="cpu"):
    """The MaskMix masks alone: (pixel_mask (B,1,H,W), token_mask (B,N)) float in {0,1}, 1 = own (see maskmix)."""
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
    r = sample_beta(alpha, generator, device)
    k = min(cells, max(1, math.ceil(cells * r)))
    # rank of each cell in a random per-sample permutation; the k lowest ranks are own.
    rank = _uniform((batch_size, cells), generator, device).argsort(dim=1).argsort(dim=1)
    cell_mask = (rank < k).to(torch.float32).view(batch_size, 1, rows, cols)
    pixel_mask = _upsample_cells(cell_mask, mask_size, height, width)
    factor = mask_size // patch_size
    token_mask = _upsample_cells(cell_mask, factor, height // patch_size, width // patch_size).flatten(1)
    return pixel_mask, token_mask


def _upsample_cells(cell_mask: torch.Tensor, factor: int, h: int, w: int) -> torch.Tensor:
    """(B,1,r,c) → (B,1,h,w): repeat each cell ``factor`` times per axis, crop at the bottom/right border."""
    return cell_mask.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)[..., :h, :w].contiguous()


# ----------------------------------------------------------------------------------------------- schedule
class MixSchedule:
    """Picks the mixer per iteration, as the official MixPro code does.

    With probability ``maskmix_prob`` MaskMix; otherwise CutMix with probability ``switch_prob`` and Mixup else
    (defaults: 50% MaskMix, 25% Mixup, 25% CutMix). An alpha of 0 switches that mixer off (mixup_alpha=0 → CutMix
    only, both 0 → no mixing in that branch; maskmix_alpha=0 or maskmix_prob=0 → never MaskMix).
    """

    def __init__(self, maskmix_prob: float = 0.5, switch_prob: float = 0.5, mixup_alpha: float = 0.8,
                 cutmix_alpha: float = 1.0, maskmix_alpha: float = 1.0, mask_size: Optional[int] = None,
                 patch_size: Optional[int] = None):
        for name, p in (("maskmix_prob", maskmix_prob), ("switch_prob", switch_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        for name, a in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha),
                        ("maskmix_alpha", maskmix_alpha)):
            if a < 0:
                raise ValueError(f"{name} must be >= 0, got {a}")
        self.maskmix_prob = maskmix_prob if maskmix_alpha > 0 else 0.0
        self.switch_prob = switch_prob
        self.mixup_alpha, self.cutmix_alpha, self.maskmix_alpha = mixup_alpha, cutmix_alpha, maskmix_alpha
        self.mask_size, self.patch_size = mask_size, patch_size
        if self.maskmix_prob > 0:
            if mask_size is None or patch_size is None:
                raise ValueError("MaskMix is on (maskmix_prob > 0) but mask_size or patch_size is not set")
            if mask_size % patch_size:
                raise ValueError(f"mask_size={mask_size} is not a multiple of patch_size={patch_size}: MaskMix "
                                 f"cells must be whole tokens so that every token comes from exactly one image")

    @property
    def mixes(self) -> bool:
        """False when every batch passes through unmixed."""
        return self.maskmix_prob > 0 or self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def choose(self, generator: Optional[torch.Generator] = None, device="cpu") -> str:
        """The kind of mix for the next batch: 'maskmix', 'cutmix', 'mixup' or 'none'."""
        u = _uniform((2,), generator, device).tolist()
        if u[0] < self.maskmix_prob:
            return "maskmix"
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            return "cutmix" if u[1] < self.switch_prob else "mixup"
        if self.cutmix_alpha > 0:
            return "cutmix"
        if self.mixup_alpha > 0:
            return "mixup"
        return "none"

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> MixBatch:
        kind = self.choose(generator, images.device)
        if kind == "maskmix":
            return maskmix(images, self.mask_size, self.patch_size, self.maskmix_alpha, generator)
        if kind == "cutmix":
            return cutmix(images, self.cutmix_alpha, self.patch_size, generator)
        if kind == "mixup":
            return mixup(images, self.mixup_alpha, generator)
        return no_mix(images)

    def __repr__(self) -> str:
        return (f"MixSchedule(maskmix_prob={self.maskmix_prob}, switch_prob={self.switch_prob}, "
                f"mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"maskmix_alpha={self.maskmix_alpha}, mask_size={self.mask_size}, patch_size={self.patch_size})")

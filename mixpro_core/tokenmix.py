"""TokenMix (Liu et al., ECCV 2022; official code Sense-X/TokenMix @0e17d5d, ``tokenmix.py``): docs/methods.md,
"TokenMix".

A batch is mixed with one BEiT-style block mask M on the token grid (:func:`block_mask`, 1 = token taken from the
partner): x̃ = x·(1−M) + x[partner]·M (:func:`tokenmix_batch`). Its targets (:func:`tokenmix_targets`) weigh each
image's class by the share of a per-image token map P that stays visible: w_a = Σ(1−M)·P_a, w_b = Σ M·P_b. With the
released teacher label maps, P is the GT class's dense map (:func:`gt_token_maps`, TokenLabeling format); without a
teacher, P is uniform (the ``tokenmix-area`` variant: w_a is the kept area); ``tokenmix`` reads the maps from the batch
(``extras``, :data:`LABEL_MAP_EXTRAS`) and refuses to run without them. The loss is BCE with logits
(:func:`bce_with_logits`), for the Mixup batches of the method's switch too.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from .labels import check_class_count, mixed_targets
from .method import Method, MethodResult
from .mixing import MixBatch, _check_images, _randint, _to_device, _uniform, sample_beta
from .registry import METHODS


def block_mask(grid_h: int, grid_w: int, num_tokens: int, generator: Optional[torch.Generator] = None,
               min_aspect: float = 0.3, attempts: int = 10, min_block: float = 1.0) -> torch.Tensor:
    """(grid_h, grid_w) float {0,1} mask of about ``num_tokens`` tokens built from random blocks (BEiT's generator,
    as TokenMix's ``generate_mask``), on the generator's device.

    Until ``num_tokens`` are masked: up to ``attempts`` tries of a block of area U(min_block, remaining) and aspect
    exp(U(log min_aspect, −log min_aspect)), sides h = round(√(area·aspect)), w = round(√(area/aspect)), accepted when
    h < grid_h and w < grid_w (strictly, as the official code) and it masks between 1 and ``remaining`` new tokens at
    a uniform position; the first accepted block ends the tries; a round without one stops the mask short.
    """
    if not 0 <= num_tokens <= grid_h * grid_w:
        raise ValueError(f"num_tokens must be in 0..{grid_h * grid_w}, got {num_tokens}")
    if not 0 < min_aspect <= 1:
        raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect}")
    device = generator.device if generator is not None else torch.device("cpu")
    mask = torch.zeros(grid_h, grid_w, device=device)
    log_lo, log_hi = math.log(min_aspect), -math.log(min_aspect)
    count = 0
    while count < num_tokens:
        remaining = num_tokens - count
        added = 0
        for _ in range(attempts):
            u_area, u_aspect = _uniform((2,), generator).tolist()
            area = min_block + (remaining - min_block) * u_area
            aspect = math.exp(log_lo + (log_hi - log_lo) * u_aspect)
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if w < grid_w and h < grid_h:
                top, left = _randint(grid_h - h + 1, generator), _randint(grid_w - w + 1, generator)
                new = h * w - int(mask[top:top + h, left:left + w].sum())
                if 0 < new <= remaining:
                    mask[top:top + h, left:left + w] = 1.0
                    added = new
                    break
        if added == 0:
            break
        count += added
    return mask


def target_tokens(num_tokens: int, lam: float, extra_tokens: int) -> int:
    """TokenMix's mask size: min(N, int((1−λ)·N) + extra_tokens) (official: λ = 0.5, extra = the grid side, 14)."""
    return min(num_tokens, int((1.0 - lam) * num_tokens) + extra_tokens)


def tokenmix_batch(images: torch.Tensor, patch_size: int, lam: float = 0.5, extra_tokens: Optional[int] = None,
                   generator: Optional[torch.Generator] = None, min_aspect: float = 0.3) -> MixBatch:
    """One TokenMix batch: a :func:`block_mask` of :func:`target_tokens` tokens for the whole batch, the partner the
    flipped batch (as the official code: sample i with B−1−i), x̃ = x·(1−M) + x[partner]·M.

    ``extra_tokens`` defaults to the grid width (14 at 224 px / patch 16). In the returned :class:`MixBatch` own = 1
    (token_mask = 1 − M), lam_area = 1 − |M|/N exactly (the mask may stop short of its target)."""
    _check_images(images)
    b, _, h, w = images.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch_size={patch_size}")
    gh, gw = h // patch_size, w // patch_size
    n = gh * gw
    count = target_tokens(n, lam, gw if extra_tokens is None else extra_tokens)
    taken = _to_device(block_mask(gh, gw, count, generator, min_aspect), images.device)
    own_tokens = (1.0 - taken).view(1, 1, gh, gw)
    pixel_mask = own_tokens.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3).expand(b, 1, h, w)
    partner = torch.arange(b - 1, -1, -1, device=images.device)
    mixed = torch.where(pixel_mask.bool(), images, images[partner])
    lam_area = torch.full((b,), float(own_tokens.mean()), device=images.device)
    return MixBatch(mixed, partner, lam_area, pixel_mask, own_tokens.flatten(1).expand(b, n), "tokenmix",
                    token_exact=True)


def gt_token_maps(scores: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor,
                  grid: Tuple[int, int], official_box_order: bool = False) -> torch.Tensor:
    """The GT class's teacher map on the token grid, normalised to sum 1: (B, gh, gw).

    ``scores`` / ``indices`` (B, k, H', W'): a TokenLabeling-format top-k label map per image (k class scores and
    their class ids at each map cell), already flipped with the image; ``boxes`` (B, 4) the image's crop as fractions
    (x0, y0, x1, y1) of the map's width/height. The GT class's score (0 where it is not in the top k) is pooled onto
    the crop's token grid with ``roi_align`` (boxes in map cells − 0.5, the official offset; aligned=False), then
    divided by its sum + 1e-8 (an image whose class is nowhere in its top k gets an all-zero map, as officially).
    ``official_box_order``: pass the box as the official code does, (top, left, bottom, right) where roi_align reads
    (x0, y0, x1, y1) — the crop transposed on the map (docs/methods.md, "TokenMix")."""
    from torchvision.ops import roi_align

    b, _, mh, mw = scores.shape
    gt_map = (scores.float() * (indices.long() == labels.view(b, 1, 1, 1)).float()).sum(1, keepdim=True)
    boxes = boxes.to(gt_map)
    if official_box_order:
        boxes = boxes[:, [1, 0, 3, 2]]
    cells = boxes * torch.tensor([mw, mh, mw, mh], dtype=gt_map.dtype, device=gt_map.device) - 0.5
    rois = torch.cat([torch.arange(b, dtype=gt_map.dtype, device=gt_map.device).view(b, 1), cells], dim=1)
    pooled = roi_align(gt_map, rois, output_size=grid, spatial_scale=1.0, aligned=False)[:, 0]
    return pooled / (pooled.sum((1, 2), keepdim=True) + 1e-8)


def tokenmix_targets(token_maps: torch.Tensor, taken: torch.Tensor, labels: torch.Tensor, partner: torch.Tensor,
                     num_classes: int, smoothing: float = 0.1) -> Tuple[torch.Tensor, torch.Tensor]:
    """TokenMix's targets: (targets (B,K), w_a (B,)).

    ``token_maps`` (B,N) or (B,gh,gw) each image's map P (sum 1); ``taken`` (B,N) or (gh,gw) the mask M, 1 = token from
    the partner. w_a = Σ(1−M)·P, w_b = Σ M·P[partner]; the target is, summed over a and b (not renormalised),
    w − ε/2 + ε/(2K) on the image's class and ε/(2K) on every other class."""
    b = labels.shape[0]
    maps = token_maps.reshape(b, -1).float()
    m = taken.reshape(-1, maps.shape[1]).float().expand_as(maps)
    w_a = ((1.0 - m) * maps).sum(1)
    w_b = (m * maps[partner]).sum(1)
    off = smoothing / (2 * num_classes)
    targets = torch.full((b, num_classes), 2 * off, device=maps.device)
    rows = torch.arange(b, device=maps.device)
    targets.index_put_((rows, labels.long()), w_a - smoothing / 2, accumulate=True)
    targets.index_put_((rows, labels[partner].long()), w_b - smoothing / 2, accumulate=True)
    return targets, w_a


def bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Scalar mean over B×K of BCE with logits (timm's ``BinaryCrossEntropy`` on soft targets), fp32."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())


LABEL_MAP_EXTRAS = ("label_scores", "label_indices", "crop_box")
"""The batch inputs of :class:`TokenMix`: ``label_scores`` (B,k,H',W') float, ``label_indices`` (B,k,H',W') int64 (a
TokenLabeling top-k map per image, flipped with it), ``crop_box`` (B,4) the crop as fractions (x0, y0, x1, y1)."""


@METHODS.register("tokenmix-area")
class TokenMixArea(Method):
    """TokenMix without a teacher: the official step (block-mask batches with probability ``switch_prob``, else
    Mixup α ``mixup_alpha`` with the flipped partner; BCE with logits) with uniform token maps, so w_a is the kept
    area 1 − |M|/N and w_b = |M|/N (:class:`TokenMix` reads the released teacher label maps instead).
    ``extra_tokens``: :func:`target_tokens`' addend (default the grid width).

    ``lam`` of the result: w_a on block-mask steps, the Mixup λ otherwise."""

    NAME = "tokenmix-area"

    def __init__(self, num_classes: int, smoothing: float = 0.1, patch_size: Optional[int] = None,
                 switch_prob: float = 0.5, mixup_alpha: float = 0.8, lam: float = 0.5,
                 extra_tokens: Optional[int] = None, min_aspect: float = 0.3):
        super().__init__(num_classes, smoothing)
        if not patch_size:
            raise ValueError(f"{self.NAME} needs the backbone's token stride (patch_size) for its token-grid masks")
        if not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"switch_prob must be in [0, 1], got {switch_prob}")
        self.patch_size, self.switch_prob, self.mixup_alpha = patch_size, switch_prob, mixup_alpha
        self.lam, self.extra_tokens, self.min_aspect = lam, extra_tokens, min_aspect

    def token_maps(self, own: torch.Tensor, grid: Tuple[int, int], labels: torch.Tensor,
                   extras: Optional[Mapping[str, torch.Tensor]]) -> torch.Tensor:
        """P (B,N) of each image, sum 1: uniform here."""
        return torch.full_like(own, 1.0 / own.shape[1])

    def forward(self, backbone, images, labels, generator=None, extras=None) -> MethodResult:
        if float(_uniform((), generator)) < self.switch_prob:
            batch = tokenmix_batch(images, self.patch_size, self.lam, self.extra_tokens, generator, self.min_aspect)
            own, mixed = batch.token_mask, batch.images
            grid = (images.shape[2] // self.patch_size, images.shape[3] // self.patch_size)
            targets, lam = tokenmix_targets(self.token_maps(own, grid, labels, extras), 1.0 - own, labels,
                                            batch.partner, self.num_classes, self.smoothing)
        else:  # Mixup with the flipped batch: λx + (1−λ)x_flip, targets λ·s(y) + (1−λ)·s(y_flip)
            b = images.shape[0]
            partner = torch.arange(b - 1, -1, -1, device=images.device)
            mix = sample_beta(self.mixup_alpha, generator)
            mixed = torch.lerp(images[partner], images, mix)
            targets = mixed_targets(labels, partner, mix, self.num_classes, self.smoothing)
            lam = torch.full((b,), mix, device=images.device)
        logits = backbone(mixed)
        check_class_count(logits, self.num_classes, self.NAME)
        return MethodResult(bce_with_logits(logits, targets), lam, {})


@METHODS.register("tokenmix")
class TokenMix(TokenMixArea):
    """TokenMix with the teacher's label maps (the official method): :class:`TokenMixArea`'s step with P the GT
    class's map of each image on the token grid (:func:`gt_token_maps` of the batch's :data:`LABEL_MAP_EXTRAS`,
    given by the ``ImageNetLabelMaps`` dataset). ``official_box_order``: read the crop box as the official code does
    (the crop transposed on the map; docs/methods.md, "TokenMix"). Refuses to run without the maps."""

    EXTRAS = LABEL_MAP_EXTRAS
    NAME = "tokenmix"

    def __init__(self, num_classes: int, smoothing: float = 0.1, patch_size: Optional[int] = None,
                 switch_prob: float = 0.5, mixup_alpha: float = 0.8, lam: float = 0.5,
                 extra_tokens: Optional[int] = None, min_aspect: float = 0.3, official_box_order: bool = False):
        super().__init__(num_classes, smoothing, patch_size, switch_prob, mixup_alpha, lam, extra_tokens, min_aspect)
        self.official_box_order = official_box_order

    def missing_extras_message(self, missing) -> str:
        return (f"method 'tokenmix' needs the teacher's label maps in every training batch ({', '.join(missing)} "
                f"missing): train on dataset type 'ImageNetLabelMaps' with label_root, or use method type "
                f"'tokenmix-area', the teacher-free variant")

    def token_maps(self, own, grid, labels, extras):
        return gt_token_maps(extras["label_scores"], extras["label_indices"], labels, extras["crop_box"], grid,
                             self.official_box_order).flatten(1)

    def forward(self, backbone, images, labels, generator=None, extras=None) -> MethodResult:
        missing = [k for k in self.EXTRAS if extras is None or k not in extras]
        if missing:
            raise ValueError(self.missing_extras_message(missing))
        return super().forward(backbone, images, labels, generator, extras)

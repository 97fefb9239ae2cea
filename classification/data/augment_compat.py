"""timm's RandAugment under Pillow ≥ 13: posterize to zero bits.

timm's ``PosterizeIncreasing`` keeps ``4 − int(level / 10 · 4)`` bits, which is 0 when the magnitude (m9 with
mstd 0.5: N(9, 0.5) clipped to [0, 10]) reaches 10 — about 2% of its draws. Pillow < 13 turned a 0-bit posterize
into a black image; Pillow 13's ``ImageOps.posterize`` raises ValueError for bits outside 1–8, which would crash a
loader worker every few hundred images. :func:`patch_posterize` gives timm's posterize ops the old result back, so
training behaves the same under every Pillow version.
"""
from __future__ import annotations

from typing import Callable

from PIL import Image
from timm.data import auto_augment

__all__ = ["posterize_zero_bits_black", "patch_posterize"]


def posterize_zero_bits_black(img: Image.Image, bits_to_keep: int, **kwargs) -> Image.Image:
    """timm's ``posterize``, with 0 (or fewer) bits kept → an all-zero image of the same mode and size."""
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return auto_augment.posterize(img, bits_to_keep, **kwargs)


def patch_posterize(transform: Callable) -> Callable:
    """Swap the posterize function of every timm augmentation op inside ``transform`` (a torchvision ``Compose``,
    timm's RandAugment / AutoAugment, or nested ones) for :func:`posterize_zero_bits_black`; returns ``transform``."""
    for part in getattr(transform, "transforms", None) or []:
        patch_posterize(part)
    for op in getattr(transform, "ops", None) or []:
        if getattr(op, "aug_fn", None) is auto_augment.posterize:
            op.aug_fn = posterize_zero_bits_black
    for policy in getattr(transform, "policy", None) or []:  # AutoAugment: a list of sub-policies (lists of ops)
        for op in policy:
            if getattr(op, "aug_fn", None) is auto_augment.posterize:
                op.aug_fn = posterize_zero_bits_black
    return transform

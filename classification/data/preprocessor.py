"""The device end of the uint8 image path: host→device copy, normalisation and random erasing, batched.

With ``transform=dict(type='timm', ..., uint8=True)`` (the ImageNet configs) the loader workers decode, crop, flip
and RandAugment in uint8 and ship (B,3,H,W) uint8 batches — a quarter of the bytes of float32 — and
:class:`ImageNetPreprocessor` (``data_preprocessor=dict(type='ImageNetPreprocessor', re_prob=0.25, re_mode='pixel')``
in the ImageNet dataset bases; mmengine's Runner puts it into the model) finishes them on the model's device, as
timm's CUDA prefetcher does: ``x = (uint8 / 255 − mean) / std`` (:func:`normalize_uint8`: the float transform's
ToTensor + Normalize, same operations), then timm's ``RandomErasing`` on the batch (training only). Batches that are
already floating point (normalised and erased in the workers) are only moved to the device, so the same model config
trains from either kind of loader.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from mmengine.registry import MODELS
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.random_erasing import RandomErasing

__all__ = ["ImageNetPreprocessor", "normalize_uint8"]


def normalize_uint8(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B,C,H,W) → float32 ``(images / 255 − mean) / std``; mean/std (1,C,1,1) float32 on the same device.

    The operations and their order are torchvision's ``to_tensor`` + ``Normalize``, so the result equals the float
    transform's for the same crop."""
    if images.dtype != torch.uint8:
        raise ValueError(f"normalize_uint8 expects a uint8 batch, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] != mean.shape[1]:
        raise ValueError(f"normalize_uint8 expects (B,{mean.shape[1]},H,W) images, got shape {tuple(images.shape)}")
    return images.float().div_(255).sub_(mean).div_(std)


@MODELS.register_module()
class ImageNetPreprocessor(BaseDataPreprocessor):
    """Batch ``dict(inputs=(B,C,H,W), data_samples=(B,))`` → the same dict on the model's device, images normalised.

    Args:
        mean, std: per-channel statistics in [0, 1] units (ImageNet's by default).
        re_prob: probability that a training image gets one erased rectangle (0 disables erasing).
        re_mode: fill of the rectangle ('pixel': per-pixel N(0,1) noise in normalised units; 'rand': one N(0,1)
            colour; 'const': zeros), as timm's ``--remode``.
        re_count: at most this many rectangles per erased image (timm's ``--recount``).
        re_min_area, re_max_area, re_min_aspect: rectangle area as a fraction of the image (0.02–1/3) and the
            aspect-ratio range (re_min_aspect–1/re_min_aspect, drawn log-uniformly), timm's defaults.
        non_blocking: host→device copies without waiting (the loaders pin their batches: ``pin_memory=True``).

    uint8 inputs are normalised (and erased when ``training``); floating-point inputs pass through unchanged.
    Erasing draws from Python's ``random`` (as timm does) and fills on the device, so no value is read back.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_DEFAULT_MEAN, std: Sequence[float] = IMAGENET_DEFAULT_STD,
                 re_prob: float = 0.0, re_mode: str = "pixel", re_count: int = 1, re_min_area: float = 0.02,
                 re_max_area: float = 1 / 3, re_min_aspect: float = 0.3, non_blocking: bool = True):
        super().__init__(non_blocking=non_blocking)
        if len(mean) != len(std):
            raise ValueError(f"data_preprocessor: mean has {len(mean)} channels but std has {len(std)}")
        if not 0.0 <= re_prob <= 1.0:
            raise ValueError(f"data_preprocessor.re_prob must lie in [0, 1], got {re_prob}")
        if re_mode not in ("pixel", "rand", "const"):
            raise ValueError(f"data_preprocessor.re_mode must be 'pixel', 'rand' or 'const', got {re_mode!r}")
        if not 0.0 < re_min_area <= re_max_area <= 1.0:
            raise ValueError(f"data_preprocessor: need 0 < re_min_area <= re_max_area <= 1, got "
                             f"{re_min_area}, {re_max_area}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.re_prob, self.re_mode, self.re_count = re_prob, re_mode, re_count
        self._re_args = dict(probability=re_prob, min_area=re_min_area, max_area=re_max_area,
                             min_aspect=re_min_aspect, mode=re_mode, max_count=re_count)
        self._erasing: Optional[RandomErasing] = None

    def random_erasing(self) -> Optional[RandomErasing]:
        """timm's RandomErasing filling on this preprocessor's device (None when re_prob is 0)."""
        if self.re_prob <= 0:
            return None
        if self._erasing is None or torch.device(self._erasing.device) != self.device:
            self._erasing = RandomErasing(**self._re_args, device=self.device)
        return self._erasing

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B,C,H,W) on any device → normalised float32 on this preprocessor's device."""
        images = images.to(self.device, non_blocking=self._non_blocking)
        return normalize_uint8(images, self.mean, self.std)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        images = data["inputs"]
        if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
            images = normalize_uint8(images, self.mean, self.std)
            erasing = self.random_erasing() if training else None
            if erasing is not None:
                images = erasing(images)
            data = dict(data, inputs=images)
        return data

    def extra_repr(self) -> str:
        return f"re_prob={self.re_prob}, re_mode={self.re_mode!r}, re_count={self.re_count}"

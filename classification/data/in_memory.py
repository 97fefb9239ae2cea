"""In-memory batched data for small image datasets (Fashion-MNIST, CIFAR): no worker processes, one call per batch.

``FashionMNISTInMemory`` / ``CIFARInMemory`` take the arguments of ``FashionMNIST`` / ``CIFAR`` and hold the split as
one uint8 tensor ``images`` (N,C,H,W); ``__getitems__(keys)`` (called once per batch by torch's DataLoader) returns
``dict(inputs=(B,C,H',W') float32, data_samples=(B,) int64)``, passed through by ``batch_collate``. Use them with
``sampler=dict(type='SeededSampler')`` (mmengine's ``DefaultSampler`` order, yielding :class:`SampleKey` items) and
``collate_fn=dict(type='batch_collate')``: a batch's augmentation is drawn from a generator seeded by (sampler seed,
epoch, rank, position of its first sample), so a resumed run draws exactly what the uninterrupted run drew. Plain int
keys work when the transform has no randomness (a random one raises ValueError). The torchvision pad / crop / flip /
ToTensor / Normalize transform runs batched (:class:`BatchedImageTransform`, bit for bit the per-sample values for the
same crops and flips); any other (timm's for CIFAR) runs per sample under global RNGs seeded per batch and restored.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS, DATASETS, FUNCTIONS
from torchvision import transforms as T

from classification.data.cifar import CIFAR
from classification.data.fashion_mnist import FASHION_MNIST_ROOT, FashionMNIST
from classification.data.transforms import TransformSpec

__all__ = ["SampleKey", "SeededSampler", "BatchedImageTransform", "AugChoices", "FashionMNISTInMemory",
           "CIFARInMemory", "batch_collate", "batch_seed"]


class SampleKey(NamedTuple):
    """One item of :class:`SeededSampler`: the dataset ``index`` plus what seeds the augmentation of its batch."""
    index: int
    seed: int
    epoch: int
    position: int  # global position in the epoch's stream: (position in this rank's stream) · world_size + rank


def batch_seed(key: SampleKey) -> int:
    """The 63-bit generator seed of the batch whose first item is ``key`` (NumPy's SeedSequence hash)."""
    entropy = [v & (2 ** 64 - 1) for v in (key.seed, key.epoch, key.position)]  # SeedSequence wants v >= 0
    words = np.random.SeedSequence(entropy).generate_state(2)  # two uint32
    return ((int(words[0]) << 32) | int(words[1])) & (2 ** 63 - 1)


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (same arguments, same index order) yielding :class:`SampleKey` items."""

    def __iter__(self):
        rank, world = self.rank, self.world_size
        for pos, index in enumerate(super().__iter__()):
            yield SampleKey(int(index), int(self.seed), int(self.epoch), pos * world + rank)


# ----------------------------------------------------------------------------------------------- batched transform
class AugChoices(NamedTuple):
    """The random choices of a batch: crop offsets ``top``/``left`` (B,) int64 into the padded image and ``flip``
    (B,) bool."""
    top: torch.Tensor
    left: torch.Tensor
    flip: torch.Tensor


class BatchedImageTransform:
    """uint8 (B,C,H,W) → float32 (B,C,H',W'): optional zero-padded random crop, horizontal flip, black border,
    scaling to [0,1] and per-channel normalisation, in this order (torchvision's RandomCrop, RandomHorizontalFlip,
    Pad, ToTensor, Normalize).

    Args:
        crop_size: (h, w) of the random crop, taken from the image padded by ``crop_padding`` zeros on every side;
            None: no crop.
        crop_padding: zero padding before the crop.
        flip_prob: probability of a horizontal flip (after the crop).
        border: zero pixels added on every side after crop and flip.
        mean, std: per-channel normalisation of the [0,1] values; None: no normalisation.
    """

    def __init__(self, crop_size: Optional[Sequence[int]] = None, crop_padding: int = 0, flip_prob: float = 0.0,
                 border: int = 0, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
        if (mean is None) != (std is None):
            raise ValueError("BatchedImageTransform: give both mean and std, or neither")
        if crop_padding < 0 or border < 0 or not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"BatchedImageTransform: crop_padding={crop_padding}, border={border} must be >= 0 and "
                             f"flip_prob={flip_prob} in [0, 1]")
        self.crop_size = None if crop_size is None else (int(crop_size[0]), int(crop_size[1]))
        self.crop_padding, self.flip_prob, self.border = int(crop_padding), float(flip_prob), int(border)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    @property
    def is_random(self) -> bool:
        return self.crop_size is not None or self.flip_prob > 0

    def draw(self, batch: int, height: int, width: int, generator: Optional[torch.Generator]) -> AugChoices:
        """Crop offsets uniform over ``0..H+2·padding−h`` (and likewise for the width), flips with ``flip_prob``
        — torchvision's RandomCrop.get_params and RandomHorizontalFlip distributions."""
        p = self.crop_padding
        if self.crop_size is None:
            top = left = torch.zeros(batch, dtype=torch.long)
        else:
            h, w = self.crop_size
            if h > height + 2 * p or w > width + 2 * p:
                raise ValueError(f"crop {self.crop_size} is larger than the padded image "
                                 f"{(height + 2 * p, width + 2 * p)}")
            top = torch.randint(0, height + 2 * p - h + 1, (batch,), generator=generator)
            left = torch.randint(0, width + 2 * p - w + 1, (batch,), generator=generator)
        flip = (torch.rand(batch, generator=generator) < self.flip_prob) if self.flip_prob > 0 else \
            torch.zeros(batch, dtype=torch.bool)
        return AugChoices(top, left, flip)

    def apply(self, images: torch.Tensor, choices: Optional[AugChoices] = None) -> torch.Tensor:
        """``images`` uint8 (B,C,H,W) with the given random ``choices`` (required when the transform is random)."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 (B,C,H,W) batch, got {images.dtype} {tuple(images.shape)}")
        x = images
        if self.is_random:
            if choices is None:
                raise ValueError("a random BatchedImageTransform needs its AugChoices (see draw)")
            x = self._crop_flip(x, choices)
        if self.border:
            x = F.pad(x, (self.border,) * 4)
        x = x.to(torch.float32).div(255)  # torchvision to_tensor
        if self.mean is not None:
            x = x.sub(self.mean).div(self.std)  # torchvision normalize
        return x

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        b, _, h, w = images.shape
        return self.apply(images, self.draw(b, h, w, generator) if self.is_random else None)

    def _crop_flip(self, x: torch.Tensor, c: AugChoices) -> torch.Tensor:
        b, ch, h, w = x.shape
        p = self.crop_padding
        if p:
            x = F.pad(x, (p, p, p, p))
        th, tw = self.crop_size or (h, w)
        rows = c.top[:, None] + torch.arange(th)  # (B,th)
        cols = c.left[:, None] + torch.arange(tw)  # (B,tw)
        cols = torch.where(c.flip[:, None], cols.flip(1), cols)
        return x[torch.arange(b)[:, None, None, None], torch.arange(ch)[None, :, None, None], rows[:, None, :, None],
                 cols[:, None, None, :]]

    @classmethod
    def from_torchvision(cls, transform: Optional[Callable]) -> Optional["BatchedImageTransform"]:
        """The batched equivalent of ``transform`` (None → scaling to [0,1] only), or None when ``transform`` is not
        a Compose of [RandomCrop] [RandomHorizontalFlip] [Pad] ToTensor [Normalize] with zero, constant padding."""
        if transform is None:
            return cls()
        steps = list(transform.transforms) if isinstance(transform, T.Compose) else [transform]
        kwargs: dict = {}

        def take(kind):
            return steps.pop(0) if steps and type(steps[0]) is kind else None

        crop = take(T.RandomCrop)
        if crop is not None:
            pad = crop.padding if crop.padding is not None else 0
            pad = pad[0] if isinstance(pad, (list, tuple)) and len(pad) == 1 else pad
            if not isinstance(pad, int) or crop.pad_if_needed or crop.fill != 0 or crop.padding_mode != "constant":
                return None
            kwargs.update(crop_size=crop.size, crop_padding=pad)
        flip = take(T.RandomHorizontalFlip)
        if flip is not None:
            kwargs["flip_prob"] = flip.p
        border = take(T.Pad)
        if border is not None:
            pad = border.padding[0] if isinstance(border.padding, (list, tuple)) and len(border.padding) == 1 \
                else border.padding
            if not isinstance(pad, int) or border.fill != 0 or border.padding_mode != "constant":
                return None
            kwargs["border"] = pad
        if take(T.ToTensor) is None:
            return None
        norm = take(T.Normalize)
        if norm is not None:
            kwargs.update(mean=tuple(norm.mean), std=tuple(norm.std))
        return cls(**kwargs) if not steps else None


# ------------------------------------------------------------------------------------------------------- datasets
@contextmanager
def _seeded_global_rngs(seed: int):
    """Seed Python's, NumPy's and torch's (CPU) global RNGs for the block, then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class InMemoryBatchesMixin:
    """``__getitems__`` over ``self.images`` uint8 (N,C,H,W) and ``self.label_tensor`` int64 (N,) (set by
    ``_init_in_memory``) with the batched form of ``self.transform`` when it has one (see the module docstring)."""

    def _init_in_memory(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.label_tensor = images, labels
        self.batched_transform = BatchedImageTransform.from_torchvision(self.transform)

    def __getitems__(self, keys: Sequence[Union[int, SampleKey]]) -> dict:
        """The batch of ``keys`` → ``dict(inputs=(B,C,H',W') float32, data_samples=(B,) int64)``."""
        if not keys:
            raise ValueError(f"{type(self).__name__}.__getitems__: empty batch")
        seeded = isinstance(keys[0], SampleKey)
        idx = torch.tensor([k.index if seeded else int(k) for k in keys], dtype=torch.long)
        seed = batch_seed(keys[0]) if seeded else None
        bt = self.batched_transform
        if bt is not None:
            if bt.is_random and seed is None:
                raise ValueError(f"{type(self).__name__}: the transform is random; its batches need SampleKey "
                                 f"indices (sampler=dict(type='SeededSampler', ...)) to be reproducible")
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            inputs = bt(self.images[idx], gen)
        elif seed is None:
            inputs = torch.stack([self._one(int(i)) for i in idx])
        else:
            with _seeded_global_rngs(seed):
                inputs = torch.stack([self._one(int(i)) for i in idx])
        return dict(inputs=inputs, data_samples=self.label_tensor[idx])

    def _one(self, index: int) -> torch.Tensor:
        return self[index]["inputs"]


@DATASETS.register_module()
class FashionMNISTInMemory(InMemoryBatchesMixin, FashionMNIST):
    """:class:`~classification.data.fashion_mnist.FashionMNIST` (same arguments) with batched ``__getitems__``;
    ``images`` (N,1,28,28) uint8 is a view of ``data``. ``dataset[i]`` is unchanged (per-sample transform)."""

    def __init__(self, root: str = FASHION_MNIST_ROOT, split: str = "train",
                 transform: TransformSpec = None, limit: Optional[int] = None):
        super().__init__(root=root, split=split, transform=transform, limit=limit)
        self._init_in_memory(self.data.unsqueeze(1), self.targets)


@DATASETS.register_module()
class CIFARInMemory(InMemoryBatchesMixin, CIFAR):
    """:class:`~classification.data.cifar.CIFAR` (same arguments) with batched ``__getitems__``; ``images``
    (N,3,32,32) uint8. timm transforms are not batchable: they run per sample, seeded per batch."""

    def __init__(self, root: str, split: str = "train", num_classes: int = 100, transform: TransformSpec = None):
        super().__init__(root=root, split=split, num_classes=num_classes, transform=transform)
        self._init_in_memory(torch.from_numpy(self.data).permute(0, 3, 1, 2).contiguous(),
                             torch.tensor(self.targets, dtype=torch.long))


@FUNCTIONS.register_module()
def batch_collate(batch: dict) -> dict:
    """The collate_fn of the in-memory datasets: their ``__getitems__`` already returns the batch dict."""
    if not isinstance(batch, dict) or "inputs" not in batch or "data_samples" not in batch:
        raise ValueError(f"batch_collate expects the dict(inputs=..., data_samples=...) of an in-memory dataset's "
                         f"__getitems__ (FashionMNISTInMemory, CIFARInMemory), got {type(batch).__name__}; use "
                         f"collate_fn=dict(type='default_collate') for per-sample datasets")
    return batch

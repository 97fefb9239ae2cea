"""Classification data: what every dataset shares, and the transforms.

Every dataset is a plain :class:`torch.utils.data.Dataset` registered in mmengine's root ``DATASETS`` registry.
``dataset[i]`` is ``dict(inputs=image (C,H,W) float tensor, data_samples=int label)`` (a uint8 tensor with
``transform=dict(type='timm', ..., uint8=True)``), so mmengine's ``default_collate`` gives ``inputs`` (B,C,H,W) and
``data_samples`` (B,) int64. Each dataset has ``num_classes`` and ``metainfo`` (:class:`ClassMetainfo`).
A dataset's ``transform`` (:func:`resolve_transform`) is ``None`` (the image as a float tensor in [0, 1], not
normalised), a callable ``PIL.Image -> (C,H,W) tensor``, or a config dict built with mmengine's root ``TRANSFORMS``
registry: ``dict(type='timm', ...)`` → :func:`build_transform` (timm's ``create_transform``),
``dict(type='fashion_mnist', ...)`` → :func:`build_fashion_mnist_transform`, or any other registered transform that
maps a PIL image to a tensor. Importing this module (``classification.register_all`` does) registers the transforms.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from mmengine.registry import TRANSFORMS
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from torchvision import transforms as T
from torchvision.transforms.functional import to_tensor

from classification.data.augment_compat import patch_posterize

FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
TransformSpec = Union[None, Callable, dict]

__all__ = ["TransformSpec", "ClassMetainfo", "build_transform", "build_fashion_mnist_transform", "resolve_transform",
           "apply_transform"]


class ClassMetainfo:
    """``metainfo``: what mmengine hands evaluators and visualisers as ``dataset_meta`` and stores in checkpoint
    meta — the number of classes and, where known, their names."""

    @property
    def metainfo(self) -> dict:
        names = getattr(self, "classes", None)
        return dict(num_classes=self.num_classes, **({} if names is None else {"classes": tuple(names)}))


@TRANSFORMS.register_module(name="timm")
def build_transform(is_train: bool, input_size: int = 224, in_chans: int = 3, mean: Optional[Tuple[float, ...]] = None,
                    std: Optional[Tuple[float, ...]] = None, auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1",
                    color_jitter: Optional[float] = 0.4, re_prob: Optional[float] = None,
                    interpolation: str = "bicubic", crop_pct: float = 224 / 256, re_mode: str = "pixel",
                    uint8: bool = False, **kwargs) -> Callable:
    """timm's ``create_transform``: PIL image → (in_chans, input_size, input_size) normalised float tensor.

    Train: RandomResizedCrop(bicubic) + flip + RandAugment (``auto_augment``; None disables it) + colour jitter
    (used by timm only when ``auto_augment`` is None) + random erasing (``re_prob``, default 0.25, per-pixel noise).
    Eval: resize to ``input_size / crop_pct`` and centre crop ``input_size`` (224/256 → resize 256, crop 224).
    ``mean``/``std`` default to ImageNet's (their channel average repeated when ``in_chans != 3``).
    ``uint8=True``: the same crops and augmentations ending in a uint8 (C,H,W) tensor (timm's prefetcher mode);
    normalisation and random erasing then run on the device in
    :class:`classification.data.preprocessor.ImageNetPreprocessor`, so ``re_prob`` must not be given here.
    Extra keyword arguments go to ``timm.data.create_transform`` unchanged.
    """
    if uint8 and re_prob:
        raise ValueError(f"transform re_prob={re_prob} with uint8=True: random erasing runs on the device in uint8 "
                         f"mode; set it as data_preprocessor=dict(type='ImageNetPreprocessor', re_prob=...)")
    re_prob = 0.25 if re_prob is None and not uint8 else (re_prob or 0.0)
    if mean is None:
        mean = IMAGENET_DEFAULT_MEAN if in_chans == 3 else (float(np.mean(IMAGENET_DEFAULT_MEAN)),) * in_chans
    if std is None:
        std = IMAGENET_DEFAULT_STD if in_chans == 3 else (float(np.mean(IMAGENET_DEFAULT_STD)),) * in_chans
    if is_train:  # patch_posterize: timm's 0-bit posterize under Pillow >= 13 (classification.data.augment_compat)
        return patch_posterize(create_transform(
            input_size, is_training=True, color_jitter=color_jitter, auto_augment=auto_augment,
            interpolation=interpolation, re_prob=re_prob, re_mode=re_mode, mean=tuple(mean), std=tuple(std),
            use_prefetcher=uint8, **kwargs))
    return create_transform(input_size, is_training=False, interpolation=interpolation, crop_pct=crop_pct,
                            mean=tuple(mean), std=tuple(std), use_prefetcher=uint8, **kwargs)


@TRANSFORMS.register_module(name="fashion_mnist")
def build_fashion_mnist_transform(is_train: bool, size: int = 28, padding: int = 2, border: int = 0) -> Callable:
    """PIL 'L' image (size×size) → (1,size+2·border,size+2·border) normalised tensor; train adds a padded random crop
    and a flip. ``border`` pads a black frame (Fashion-MNIST's background) around every image, e.g. 2 → 32×32 for a
    patch-8 model."""
    tail = [T.ToTensor(), T.Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)]
    head = [T.Pad(border)] if border else []
    if not is_train:
        return T.Compose(head + tail)
    return T.Compose([T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip(), *head, *tail])


def resolve_transform(spec: TransformSpec) -> Optional[Callable]:
    """None → None; a callable → itself; a dict → ``TRANSFORMS.build(spec)`` (see the module docstring)."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, dict):
        return TRANSFORMS.build(dict(spec))
    raise TypeError(f"transform must be None, a callable or a config dict, got {type(spec).__name__}")


def apply_transform(transform: Optional[Callable], img: Image.Image) -> torch.Tensor:
    return to_tensor(img) if transform is None else transform(img)

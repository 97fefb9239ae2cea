"""The Fashion-MNIST dataset of the training configs (:class:`FashionMNIST`, registered in DATASETS on import) over
the raw-file reader :mod:`classification.data.idx`; the dataset contract and the transforms:
:mod:`classification.data.transforms`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from PIL import Image
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from classification.data.idx import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, read_fashion_mnist
from classification.data.transforms import ClassMetainfo, TransformSpec, resolve_transform

__all__ = ["FASHION_MNIST_ROOT", "FashionMNIST"]


@DATASETS.register_module()
class FashionMNIST(ClassMetainfo, Dataset):
    """Fashion-MNIST from its four IDX files (Debian package ``dataset-fashion-mnist``).

    The whole split is held in memory: ``data`` uint8 (N,28,28), ``targets`` int64 (N,). The transform receives a
    PIL 'L' image; without one, ``inputs`` is (1,28,28) float in [0,1]. ``limit`` keeps the first N samples.
    """
    classes = list(FASHION_MNIST_CLASSES)
    num_classes = len(FASHION_MNIST_CLASSES)
    missing_root_hint = "Fashion-MNIST: `make setup` as root installs the Debian package dataset-fashion-mnist"
    """Said with a config's missing ``root`` (:func:`classification.engine.config_check.check_data_roots`)."""

    def __init__(self, root: str = FASHION_MNIST_ROOT, split: str = "train", transform: TransformSpec = None,
                 limit: Optional[int] = None):
        images, labels = read_fashion_mnist(root, split)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.root, self.split = root, split
        self.data = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform = resolve_transform(transform)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        img = self.data[index]
        if self.transform is None:
            inputs = img.unsqueeze(0).float().div_(255)
        else:
            inputs = self.transform(Image.fromarray(img.numpy()))
        return dict(inputs=inputs, data_samples=int(self.targets[index]))

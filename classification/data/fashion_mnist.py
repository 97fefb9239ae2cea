"""Fashion-MNIST from its four IDX files (:class:`FashionMNIST`, :func:`read_idx`); the dataset contract and the
transforms: :mod:`classification.data.transforms`. Importing the ``classification`` package (or this module) registers
it.
"""
from __future__ import annotations

import gzip
import os
from typing import Optional

import numpy as np
import torch
from PIL import Image
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from classification.data.transforms import ClassMetainfo, TransformSpec, resolve_transform

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

__all__ = ["FASHION_MNIST_ROOT", "read_idx", "FashionMNIST"]


_IDX_MAGIC = {2049: 1, 2051: 3}  # labels: (count,), images: (count, rows, cols); unsigned bytes


def read_idx(path: str, expected_magic: Optional[int] = None) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes: magic 2049 → labels (N,), magic 2051 → images (N,rows,cols).

    Raises FileNotFoundError if ``path`` is missing and ValueError (naming the file) on a bad magic, an
    unexpected magic, or a payload whose size does not match the header. (torchvision's
    ``read_sn3_pascalvincent_tensor`` reads only uncompressed files — the Debian package ships ``.gz`` — and checks
    the header with bare ``assert``s, so it is not used here.)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (Fashion-MNIST: `apt-get install dataset-fashion-mnist`)")
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        try:
            raw = f.read()
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: unreadable IDX file ({e})") from e
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if magic not in _IDX_MAGIC or (expected_magic is not None and magic != expected_magic):
        want = expected_magic if expected_magic is not None else sorted(_IDX_MAGIC)
        raise ValueError(f"{path}: bad IDX magic number {magic} (expected {want})")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes) "
                         f"but the file holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@DATASETS.register_module()
class FashionMNIST(ClassMetainfo, Dataset):
    """Fashion-MNIST from its four IDX files (Debian package ``dataset-fashion-mnist``).

    The whole split is held in memory: ``data`` uint8 (N,28,28), ``targets`` int64 (N,). The transform receives a
    PIL 'L' image; without one, ``inputs`` is (1,28,28) float in [0,1]. ``limit`` keeps the first N samples.
    """
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    num_classes = 10
    _FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root: str = FASHION_MNIST_ROOT, split: str = "train", transform: TransformSpec = None,
                 limit: Optional[int] = None):
        if split not in self._FILES:
            raise ValueError(f"split must be one of {sorted(self._FILES)}, got {split!r}")
        img_path, lbl_path = (self._find(root, name) for name in self._FILES[split])
        images, labels = read_idx(img_path, 2051), read_idx(lbl_path, 2049)
        if len(images) != len(labels):
            raise ValueError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels")
        if labels.size and labels.max() >= self.num_classes:
            raise ValueError(f"{lbl_path}: label {int(labels.max())} outside 0..{self.num_classes - 1}")
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.root, self.split = root, split
        self.data = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform = resolve_transform(transform)

    @staticmethod
    def _find(root: str, name: str) -> str:
        """``root/name.gz``, else an uncompressed ``root/name``; the .gz path is the one reported when missing."""
        gz = os.path.join(root, name + ".gz")
        plain = os.path.join(root, name)
        return plain if not os.path.isfile(gz) and os.path.isfile(plain) else gz

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        img = self.data[index]
        if self.transform is None:
            inputs = img.unsqueeze(0).float().div_(255)
        else:
            inputs = self.transform(Image.fromarray(img.numpy()))
        return dict(inputs=inputs, data_samples=int(self.targets[index]))

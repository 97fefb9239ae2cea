"""Fashion-MNIST's raw files, numpy only (no torch): :func:`read_idx` (one IDX file) and
:func:`read_fashion_mnist` (a split's images and labels, checked). The dataset of the training configs is
:class:`classification.data.fashion_mnist.FashionMNIST`; the generated downstream sets read the raw arrays here.
"""
from __future__ import annotations

import gzip
import os
from typing import Optional, Tuple

import numpy as np

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

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


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(root: str, name: str) -> str:
    """``root/name.gz``, else an uncompressed ``root/name``; the .gz path is the one reported when missing."""
    gz = os.path.join(root, name + ".gz")
    plain = os.path.join(root, name)
    return plain if not os.path.isfile(gz) and os.path.isfile(plain) else gz


def read_fashion_mnist(root: str = FASHION_MNIST_ROOT, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """A split's images uint8 (N,28,28) and labels uint8 (N,), both files found (.gz or plain) and checked:
    ValueError naming the file for an unknown split, a count mismatch or a label outside 0..9."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    img_path, lbl_path = (_find(root, name) for name in _FILES[split])
    images, labels = read_idx(img_path, 2051), read_idx(lbl_path, 2049)
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{lbl_path}: label {int(labels.max())} outside 0..{len(FASHION_MNIST_CLASSES) - 1}")
    return images, labels

"""CIFAR-10 / CIFAR-100 from the python-pickle batch files of the official archives (:class:`CIFAR`); the dataset
contract and the transforms: :mod:`classification.data.transforms`. Importing this module
(``classification.register_all`` does) registers it.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
from PIL import Image
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from classification.data.transforms import ClassMetainfo, TransformSpec, apply_transform, resolve_transform

__all__ = ["CIFAR"]


_PICKLE_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/str/numbers and numpy arrays only (the CIFAR batch files): nothing is executed."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch file")
        return super().find_class(module, name)


_CIFAR_LAYOUT = {  # num_classes → (folder, {split: batch files}, label key)
    10: ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
         "labels"),
    100: ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "fine_labels"),
}


@DATASETS.register_module()
class CIFAR(ClassMetainfo, Dataset):
    """CIFAR-10 / CIFAR-100 in the python-pickle format of the official archives — what
    ``torchvision.datasets.CIFAR100(root, download=True)`` leaves on disk (``cifar-100-python.tar.gz`` from
    https://www.cs.toronto.edu/~kriz/cifar.html, unpacked): ``root/cifar-100-python/{train,test}`` or
    ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}``; ``root`` may also be that folder itself.

    32×32 RGB images (PIL, then ``transform``), labels ``fine_labels`` (100 classes) or ``labels`` (10). The batch
    files are read with a restricted unpickler (arrays, lists, dicts, strings, numbers — no code runs), all into
    memory (150 MB for a training split).
    """

    def __init__(self, root: str, split: str = "train", num_classes: int = 100, transform: TransformSpec = None):
        if num_classes not in _CIFAR_LAYOUT:
            raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes}")
        folder, splits, label_key = _CIFAR_LAYOUT[num_classes]
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits)}, got {split!r}")
        base = root if os.path.basename(os.path.normpath(root)) == folder else os.path.join(root, folder)
        images, labels = [], []
        for name in splits[split]:
            path = os.path.join(base, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"CIFAR-{num_classes} batch file {path} not found (unpack "
                                        f"{folder.replace('-batches-py', '-python')}.tar.gz from "
                                        f"https://www.cs.toronto.edu/~kriz/cifar.html into {root})")
            with open(path, "rb") as f:
                entry = _ArrayUnpickler(f, encoding="latin1").load()
            if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
                raise ValueError(f"{path} is not a CIFAR-{num_classes} batch file (no 'data' / '{label_key}')")
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(v) for v in entry[label_key])
        self.data = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))  # (N,32,32,3)
        self.targets = labels
        if len(self.targets) != len(self.data):
            raise ValueError(f"CIFAR-{num_classes} {split}: {len(self.data)} images but {len(self.targets)} labels")
        self.root, self.split, self.num_classes = root, split, num_classes
        self.transform = resolve_transform(transform)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        img = Image.fromarray(self.data[index])
        return dict(inputs=apply_transform(self.transform, img), data_samples=self.targets[index])

"""A tiny Pascal Context in the layout mmseg's converter leaves (docs/downstream.md), for tests of the Table 2 configs.

:func:`make_pascal_context` writes under ``<out>/VOCdevkit/VOC2010/``: ``JPEGImages/<id>.jpg`` (RGB),
``SegmentationClassContext/<id>.png`` (uint8 label maps in mmseg's 60-class indexing: 0 = background, 1..59 the
classes of ``PascalContextDataset``, no ignore value — as ``tools/dataset_converters/pascal_context.py`` writes) and
``ImageSets/SegmentationContext/{train,val}.txt`` (one id per line, sorted). Ids are VOC-style (``2008_000001``).
Each image is a noisy background of class 0 with a few filled rectangles, each of one class drawn from ``classes``
in that class's palette colour, so a model can tell them apart; one seed gives the same files.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from PIL import Image

VOC = osp.join("VOCdevkit", "VOC2010")
NUM_CLASSES = 60  # mmseg's PascalContextDataset: background + 59


def _palette(k: int) -> np.ndarray:
    """A colour per class index (deterministic, distinct for 0..59)."""
    rng = np.random.default_rng(1000 + k)
    return rng.integers(0, 256, size=3)


def _sample(rng: np.random.Generator, height: int, width: int, classes: Sequence[int], boxes: int):
    """(image (H,W,3) uint8, label map (H,W) uint8) of one picture."""
    label = np.zeros((height, width), np.uint8)
    for _ in range(boxes):
        k = int(rng.choice(classes))
        h, w = int(rng.integers(height // 4, height // 2 + 1)), int(rng.integers(width // 4, width // 2 + 1))
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        label[y:y + h, x:x + w] = k
    colours = np.stack([_palette(k) for k in range(NUM_CLASSES)])
    image = colours[label] + rng.normal(0, 12, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_pascal_context(out_dir: str, num_train: int = 4, num_val: int = 2, height: int = 48, width: int = 64,
                        classes: Sequence[int] = (1, 15, 37, 59), boxes: int = 3, seed: int = 0) -> Dict[str, dict]:
    """Write the set (see the module docstring) and return ``{split: {"ids": [...], "labels": {id: (H,W) uint8}}}``
    (``train``, ``val``); ``classes``: the label values the rectangles take (1..59)."""
    if not classes or any(not 1 <= k < NUM_CLASSES for k in classes):
        raise ValueError(f"classes must be in 1..{NUM_CLASSES - 1}, got {list(classes)}")
    root = osp.join(out_dir, VOC)
    folders = {name: osp.join(root, name) for name in ("JPEGImages", "SegmentationClassContext",
                                                       osp.join("ImageSets", "SegmentationContext"))}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    out, n = {}, 0
    for split, count in (("train", num_train), ("val", num_val)):
        ids, labels = [], {}
        for _ in range(count):
            n += 1
            name = f"2008_{n:06d}"
            image, label = _sample(rng, height, width, classes, boxes)
            Image.fromarray(image).save(osp.join(folders["JPEGImages"], name + ".jpg"), quality=95)
            Image.fromarray(label).save(osp.join(folders["SegmentationClassContext"], name + ".png"))
            ids.append(name)
            labels[name] = label
        with open(osp.join(folders[osp.join("ImageSets", "SegmentationContext")], f"{split}.txt"), "w") as f:
            f.writelines(i + "\n" for i in sorted(ids))
        out[split] = dict(ids=sorted(ids), labels=labels)
    return out

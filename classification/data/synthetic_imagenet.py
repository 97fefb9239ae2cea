"""A synthetic ImageNet-format JPEG folder for input-pipeline timing: ``root/{train,val}/n%08d/<i>.JPEG``.

Each image is a coarse random colour grid (one cell per ``cell`` pixels) upsampled bicubically to a random size
between ``min_side`` and ``max_side`` per side and saved as a JPEG of quality 90, so decoding, resizing and
RandAugment cost what they cost on photographs of ImageNet's size (the default 300–500 px gives files of about
30–60 kB); the labels carry no signal. Image ``(split, class, i)`` is drawn from a generator seeded by its name, so a
folder is the same whatever the number of processes. ``root/synthetic.json`` records the parameters; a folder
written with the same parameters is reused as it is.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import zlib
from multiprocessing import get_context
from typing import Optional, Tuple

import numpy as np
from PIL import Image

__all__ = ["make_synthetic_imagenet", "synthetic_image"]

MARKER = "synthetic.json"


def synthetic_image(name: str, min_side: int, max_side: int, cell: int = 16) -> Image.Image:
    """The RGB image called ``name``: height and width uniform in [min_side, max_side], smooth random content."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    h, w = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    coarse = rng.integers(0, 256, size=(h // cell + 2, w // cell + 2, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((w, h), Image.BICUBIC)


def _write(job: Tuple[str, str, int, int, int, int, int]) -> None:
    root, split, c, i, min_side, max_side, quality = job
    folder = osp.join(root, split, f"n{c:08d}")
    synthetic_image(f"{split}/{c}/{i}", min_side, max_side).save(osp.join(folder, f"{i}.JPEG"), quality=quality)


def make_synthetic_imagenet(root: str, classes: int, train_per_class: int, val_per_class: int, min_side: int = 300,
                            max_side: int = 500, quality: int = 90, processes: Optional[int] = None) -> bool:
    """Write the folder (``processes`` worker processes, default one per usable core); True if it was written,
    False if ``root`` already held one made with the same parameters. A ``root`` holding anything else (a folder
    of other parameters, or one without ``synthetic.json``) is a ValueError: nothing is overwritten."""
    if classes < 1 or train_per_class < 1 or val_per_class < 0:
        raise ValueError(f"synthetic ImageNet needs classes >= 1, train_per_class >= 1 and val_per_class >= 0, got "
                         f"{classes}, {train_per_class}, {val_per_class}")
    if not 8 <= min_side <= max_side:
        raise ValueError(f"synthetic ImageNet sides: need 8 <= min_side <= max_side, got {min_side}, {max_side}")
    params = dict(classes=classes, train_per_class=train_per_class, val_per_class=val_per_class, min_side=min_side,
                  max_side=max_side, quality=quality)
    marker = osp.join(root, MARKER)
    if osp.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            found = json.load(f)
        if found == params:
            return False
        raise ValueError(f"{root} holds a synthetic ImageNet made with {found}, not {params}: choose another folder")
    if osp.isdir(root) and os.listdir(root):
        raise ValueError(f"{root} exists and is not a synthetic ImageNet folder (no {MARKER}): choose another folder")
    jobs = []
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes if per_class else 0):
            os.makedirs(osp.join(root, split, f"n{c:08d}"), exist_ok=True)
            jobs += [(root, split, c, i, min_side, max_side, quality) for i in range(per_class)]
    processes = processes or len(os.sched_getaffinity(0))
    if processes > 1 and len(jobs) > 64:
        with get_context("fork").Pool(processes) as pool:
            pool.map(_write, jobs, chunksize=32)
    else:
        for job in jobs:
            _write(job)
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(params, f)
    return True

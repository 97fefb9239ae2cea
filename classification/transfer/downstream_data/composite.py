"""Deterministic composite downstream dataset: Fashion-MNIST objects pasted on scikit-image's bundled photos.

:func:`make_composite` (command line :func:`main`: ``tools/make_downstream_data.py --out DIR``) writes under ``<out>/``
``classes.txt`` (``background`` then the 10 Fashion-MNIST classes), ``images/{training,validation}/000000.jpg ...``
(RGB, size x size), ``annotations/{training,validation}/000000.png ...`` (uint8 label maps: 0 = background,
``k + 1`` = class ``k``, no ignore value; for mmseg) and ``annotations/instances_{train,val}.json`` (COCO, for mmdet:
category id = label value, image and annotation ids from 1, one RLE of its visible pixels per object of at least
``min_visible_area`` px). A seed gives byte-identical files on one software stack, and the validation images do not
depend on ``num_train``. The text and JSON files are written atomically; ``annotations/instances_val.json``
(:data:`COMPLETE_MARKER`) is removed first and written last, so a set that has it is whole (a killed generation leaves
none: generate it again). Formats, mmseg / mmdet settings and how an image is composed: docs/methods.md, "Generated
downstream data".
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from tqdm import tqdm

from classification.data.idx import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, read_fashion_mnist
from classification.foundation.atomic import atomic_write_text

__all__ = ["make_composite", "BACKGROUND_NAMES", "CLASSES", "main"]

# Colour photos that ship inside scikit-image's package folder (no fetcher, no network).
BACKGROUND_NAMES: Tuple[str, ...] = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                     "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg",
                                     "ihc.png")
CLASSES: Tuple[str, ...] = ("background",) + FASHION_MNIST_CLASSES
SPLITS = (("training", "train", "train"), ("validation", "test", "val"))  # (folder, fmnist split, json suffix)
JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 6
ALPHA_THRESHOLD = 0.15
_STEM_RE = re.compile(r"^\d{6}\.(jpg|png)$")
COMPLETE_MARKER = os.path.join("annotations", "instances_val.json")
"""The file :func:`make_composite` writes last (whole or not at all) and removes first: present only in a whole set."""


# ------------------------------------------------------------------------------------------------------- inputs
def _load_backgrounds(names: Sequence[str] = BACKGROUND_NAMES) -> List[np.ndarray]:
    """The bundled colour photos as uint8 (H,W,3), read with ``skimage.io.imread`` straight from the package."""
    import skimage.data
    import skimage.io
    data_dir = os.path.dirname(skimage.data.__file__)
    photos = []
    for name in names:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            continue
        img = np.asarray(skimage.io.imread(path))
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[..., :3].astype(np.uint8)))
    if not photos:
        raise FileNotFoundError(f"none of the background photos {list(names)} found in {data_dir} "
                                "(scikit-image's bundled data folder)")
    return photos


def _load_fmnist(root: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Fashion-MNIST not found: {root} does not exist "
                                "(install it with `apt-get install dataset-fashion-mnist`)")
    images, labels = read_fashion_mnist(root, split)  # FileNotFoundError with the same hint if a file is missing
    return images, labels.astype(np.int64)


# -------------------------------------------------------------------------------------------------- composition
def _background(rng: np.random.Generator, photos: List[np.ndarray], size: int,
                brightness: float = 1.0) -> np.ndarray:
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    short = min(h, w)
    side = int(rng.integers(max(1, int(0.4 * short)), short + 1))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    flip = bool(rng.integers(2))
    crop = Image.fromarray(photo[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.BILINEAR)
    out = brightness * np.asarray(crop, dtype=np.float64)
    return out[:, ::-1].copy() if flip else out.copy()


def _object(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, size: int, tint_min: float = 0.0):
    """Draw one object: (label, y0, x0, alpha (s,s) float in [0,1] zero outside the mask, colour (s,s,3))."""
    lo, hi = max(2, round(32 * size / 128)), max(2, round(80 * size / 128))
    hi = min(hi, size)
    lo = min(lo, hi)
    idx = int(rng.integers(len(images)))
    side = int(rng.integers(lo, hi + 1))
    y0 = int(rng.integers(0, size - side + 1))
    x0 = int(rng.integers(0, size - side + 1))
    flip = bool(rng.integers(2))
    tint = rng.uniform(tint_min, 255.0, size=3)
    gray = np.asarray(Image.fromarray(images[idx]).resize((side, side), Image.BILINEAR), dtype=np.float64)
    if flip:
        gray = gray[:, ::-1]
    peak = gray.max()
    norm = gray / peak if peak > 0 else gray
    mask = norm > ALPHA_THRESHOLD
    alpha = np.where(mask, np.clip(1.5 * norm, 0.0, 1.0), 0.0)
    colour = tint[None, None, :] * (0.35 + 0.65 * norm)[..., None]
    return int(labels[idx]), y0, x0, alpha, colour


def _compose(rng: np.random.Generator, photos: List[np.ndarray], images: np.ndarray, labels: np.ndarray,
             size: int, brightness: float = 1.0, tint_min: float = 0.0):
    """One image: (rgb uint8 (size,size,3), label uint8 (size,size), owner int (size,size) (-1 = none), classes)."""
    canvas = _background(rng, photos, size, brightness)
    label_map = np.zeros((size, size), dtype=np.uint8)
    owner = np.full((size, size), -1, dtype=np.int64)
    classes = []
    for k in range(int(rng.integers(1, 5))):
        cls, y0, x0, alpha, colour = _object(rng, images, labels, size, tint_min)
        s = alpha.shape[0]
        region = canvas[y0:y0 + s, x0:x0 + s]
        a = alpha[..., None]
        canvas[y0:y0 + s, x0:x0 + s] = a * colour + (1.0 - a) * region
        mask = alpha > 0
        label_map[y0:y0 + s, x0:x0 + s][mask] = cls + 1
        owner[y0:y0 + s, x0:x0 + s][mask] = k
        classes.append(cls)
    rgb = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return rgb, label_map, owner, classes


# ----------------------------------------------------------------------------------------------------- writing
def _save_jpeg(arr: np.ndarray, path: str) -> None:
    Image.fromarray(arr, mode="RGB").save(path, format="JPEG", quality=JPEG_QUALITY, optimize=False,
                                          progressive=False)


def _save_png(arr: np.ndarray, path: str) -> None:
    Image.fromarray(arr, mode="L").save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)


def _remove_stale(folder: str, keep: set) -> None:
    """Delete generated-looking files (``NNNNNN.jpg/png``) of an earlier, larger run that this run did not write."""
    for name in os.listdir(folder):
        if _STEM_RE.match(name) and name not in keep:
            os.remove(os.path.join(folder, name))


def _coco_categories() -> List[dict]:
    return [dict(id=k + 1, name=name, supercategory="fashion") for k, name in enumerate(FASHION_MNIST_CLASSES)]


def _object_annotations(owner: np.ndarray, classes: Sequence[int], image_id: int, first_id: int,
                        min_visible_area: int) -> List[dict]:
    """COCO annotations (ids from ``first_id``) of the objects of one image with at least ``min_visible_area``
    visible pixels: one RLE of those pixels each; ``owner`` (H,W) is the index into ``classes`` of the object on top
    of each pixel (-1: none)."""
    anns = []
    for k, cls in enumerate(classes):
        visible = owner == k
        if int(visible.sum()) < min_visible_area:
            continue
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        anns.append(dict(
            id=first_id + len(anns), image_id=image_id, category_id=cls + 1,
            segmentation=dict(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode("ascii")),
            area=int(mask_utils.area(rle)), bbox=[float(v) for v in mask_utils.toBbox(rle)], iscrowd=0))
    return anns


def _write_split(out_dir: str, folder: str, suffix: str, n: int, draw: Callable, rng: np.random.Generator,
                 size: int, seed: int, min_visible_area: int, verbose: bool) -> Dict:
    """The ``n`` images of one split (``draw(rng)`` composes one, :func:`_compose`), their label maps and their COCO
    file; files of an earlier, larger run are removed. Returns the split's entry of :func:`make_composite`'s
    result."""
    img_dir = os.path.join(out_dir, "images", folder)
    ann_dir = os.path.join(out_dir, "annotations", folder)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    images_json, anns_json, written = [], [], set()
    for i in tqdm(range(n), desc=f"[make_composite] {folder}", unit="img", disable=not verbose or n == 0,
                  file=sys.stdout, mininterval=1.0):
        rgb, label_map, owner, classes = draw(rng)
        stem = f"{i:06d}"
        _save_jpeg(rgb, os.path.join(img_dir, stem + ".jpg"))
        _save_png(label_map, os.path.join(ann_dir, stem + ".png"))
        written.update({stem + ".jpg", stem + ".png"})
        images_json.append(dict(id=i + 1, file_name=stem + ".jpg", height=size, width=size))
        anns_json += _object_annotations(owner, classes, i + 1, len(anns_json) + 1, min_visible_area)
    _remove_stale(img_dir, written)
    _remove_stale(ann_dir, written)
    coco = dict(info=dict(description=f"MixPro composite Fashion-MNIST-on-photos ({folder}), seed {seed}",
                          version="1.0"),
                licenses=[], images=images_json, annotations=anns_json, categories=_coco_categories())
    coco_json = os.path.join(out_dir, "annotations", f"instances_{suffix}.json")
    atomic_write_text(coco_json, json.dumps(coco, separators=(",", ":")))
    return dict(img_dir=img_dir, ann_dir=ann_dir, coco_json=coco_json, num_images=n, num_annotations=len(anns_json))


def make_composite(out_dir: str, num_train: int = 300, num_val: int = 60, size: int = 128, seed: int = 0,
                   fmnist_root: str = FASHION_MNIST_ROOT, *, min_visible_area: int = 30,
                   background_brightness: float = 1.0, tint_min: float = 0.0, verbose: bool = True) -> Dict:
    """Write the composite dataset under ``out_dir`` (layout in the module docstring); return paths and counts.

    Returns a dict with ``out_dir``, ``classes`` (11 names, background first), ``classes_file``, ``seed``,
    ``size`` and ``splits``: ``{'training': {...}, 'validation': {...}}`` each holding ``img_dir``,
    ``ann_dir``, ``coco_json``, ``num_images`` and ``num_annotations``.
    Raises FileNotFoundError (with an ``apt-get install dataset-fashion-mnist`` hint) without Fashion-MNIST.
    """
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    if not 0 < background_brightness <= 1 or not 0 <= tint_min <= 255:
        raise ValueError(f"background_brightness must be in (0, 1] and tint_min in [0, 255], got "
                         f"{background_brightness} and {tint_min}")
    if num_train < 0 or num_val < 0:
        raise ValueError("num_train and num_val must be >= 0")
    # One independent stream per split (spawned from the seed), so the validation set does not change with
    # num_train.
    split_rngs = dict(zip((f for f, _, _ in SPLITS), np.random.SeedSequence(seed).spawn(len(SPLITS))))
    photos = _load_backgrounds()
    counts = {"training": num_train, "validation": num_val}
    fmnist = {fm: _load_fmnist(fmnist_root, fm) for folder, fm, _ in SPLITS if counts[folder] > 0}

    out_dir = os.path.abspath(out_dir)
    classes_file = os.path.join(out_dir, "classes.txt")
    if os.path.isfile(os.path.join(out_dir, COMPLETE_MARKER)):  # a whole earlier set, about to be overwritten
        os.remove(os.path.join(out_dir, COMPLETE_MARKER))
    atomic_write_text(classes_file, "\n".join(CLASSES) + "\n")

    result = dict(out_dir=out_dir, classes=list(CLASSES), classes_file=classes_file, seed=seed, size=size,
                  splits={})
    for folder, fm_split, suffix in SPLITS:
        fm_images, fm_labels = fmnist.get(fm_split, (None, None))
        draw = functools.partial(_compose, photos=photos, images=fm_images, labels=fm_labels, size=size,
                                 brightness=background_brightness, tint_min=tint_min)
        result["splits"][folder] = _write_split(out_dir, folder, suffix, counts[folder], draw,
                                                np.random.default_rng(split_rngs[folder]), size, seed,
                                                min_visible_area, verbose)
    if verbose:
        tr, va = result["splits"]["training"], result["splits"]["validation"]
        print(f"[make_composite] wrote {out_dir}: training {tr['num_images']} images / {tr['num_annotations']} "
              f"objects, validation {va['num_images']} images / {va['num_annotations']} objects, "
              f"{size}x{size}, {len(CLASSES)} seg classes (0 = background), seed {seed}", flush=True)
    return result


def all_background_miou(label_dir: str, num_classes: int = 11, ignore_index: int = 255) -> float:
    """The mIoU (%) of predicting background (label 0) everywhere on the label maps (``*.png``) in ``label_dir``,
    as mmseg's ``IoUMetric`` computes it over the whole set: background IoU = background pixels / all pixels, every
    other class present in the labels IoU 0, classes absent from the labels left out (NaN in mmseg)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    names = sorted(f for f in os.listdir(label_dir) if f.endswith(".png")) if os.path.isdir(label_dir) else []
    if not names:
        raise FileNotFoundError(f"no label maps (*.png) in {label_dir}")
    for name in names:
        labels = np.asarray(Image.open(os.path.join(label_dir, name)))
        labels = labels[(labels != ignore_index) & (labels < num_classes)]
        counts += np.bincount(labels.ravel(), minlength=num_classes)
    present_foreground = int((counts[1:] > 0).sum())
    return 100.0 * counts[0] / counts.sum() / (1 + present_foreground)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/make_downstream_data.py``: 0, or 1 with an ``error: ...`` line when Fashion-MNIST is missing."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="data/composite", help="output folder (default: data/composite)")
    p.add_argument("--num-train", type=int, default=300)
    p.add_argument("--num-val", type=int, default=60)
    p.add_argument("--size", type=int, default=128, help="square image side in px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fmnist-root", default=FASHION_MNIST_ROOT)
    p.add_argument("--background-brightness", type=float, default=1.0,
                   help="factor on the background photos (default 1; the downstream set uses 0.3)")
    p.add_argument("--tint-min", type=float, default=0.0,
                   help="lowest value of each channel of the objects' tint (default 0; the downstream set uses 128)")
    args = p.parse_args(argv)
    try:
        make_composite(args.out, num_train=args.num_train, num_val=args.num_val, size=args.size, seed=args.seed,
                       fmnist_root=args.fmnist_root, background_brightness=args.background_brightness,
                       tint_min=args.tint_min)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

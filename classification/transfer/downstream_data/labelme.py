"""Segmentation and detection sets from the real photos of the Debian package ``labelme-examples``.

:func:`make_labelme` (command line :func:`main`: ``tools/make_labelme_data.py``) reads ``root`` (default
:data:`LABELME_ROOT`; any file may also be ``<name>.gz``) and writes ``<out>/seg/``: ``classes.txt`` (21 VOC names, line
i = label value i), ``images/{training,validation}/<stem>.jpg`` (the 3 photos, copied, in *both* splits: a smoke-test
set, not a benchmark) and ``annotations/{training,validation}/<stem>.png`` (uint8 VOC indices 0..20, 255 = ignore);
and ``<out>/coco/instances.json`` (polygons, ``file_name`` relative to ``<out>/coco/images/``; category 0
``_background_`` removed, category id = VOC id = seg label value, image and annotation ids shifted to start at 1).
Raises FileNotFoundError when the package is missing. Sources, mmseg / mmdet settings and why the ids start at 1:
docs/methods.md, "Generated downstream data".
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

__all__ = ["make_labelme", "LABELME_ROOT", "main"]

LABELME_ROOT = "/usr/share/doc/labelme-examples/examples"
IGNORE_INDEX = 255
SEG_SOURCES = ("semantic_segmentation/data_dataset_voc", "instance_segmentation/data_dataset_voc")
COCO_SOURCE = "instance_segmentation/data_dataset_coco"
SPLITS = ("training", "validation")
_HINT = "install it with `apt-get install labelme-examples`"


# ------------------------------------------------------------------------------------------------ gz-aware I/O
def _find(path: str) -> Optional[str]:
    """``path`` if it exists, else ``path + '.gz'`` if that exists, else None."""
    if os.path.isfile(path):
        return path
    if os.path.isfile(path + ".gz"):
        return path + ".gz"
    return None


def _read_bytes(path: str) -> bytes:
    found = _find(path)
    if found is None:
        raise FileNotFoundError(f"{path} (or {path}.gz) not found; labelme-examples: {_HINT}")
    if found.endswith(".gz"):
        with gzip.open(found, "rb") as f:
            return f.read()
    with open(found, "rb") as f:
        return f.read()


def _list_stems(folder: str, ext: str) -> List[str]:
    """Sorted stems of ``folder/*<ext>`` and ``folder/*<ext>.gz``."""
    if not os.path.isdir(folder):
        return []
    stems = set()
    for name in os.listdir(folder):
        base = name[:-3] if name.endswith(".gz") else name
        if base.lower().endswith(ext):
            stems.add(base[:-len(ext)])
    return sorted(stems)


def _read_class_mask(voc_dir: str, stem: str) -> np.ndarray:
    """uint8 (H,W) VOC class indices with 255 = ignore, from .npy (−1 → 255) or a (palette) PNG."""
    npy = os.path.join(voc_dir, "SegmentationClass", stem + ".npy")
    if _find(npy):
        arr = np.load(io.BytesIO(_read_bytes(npy)), allow_pickle=False)
        arr = np.where(arr < 0, IGNORE_INDEX, arr)
    else:
        for sub in ("SegmentationClassPNG", "SegmentationClass"):
            png = os.path.join(voc_dir, sub, stem + ".png")
            if _find(png):
                img = Image.open(io.BytesIO(_read_bytes(png)))
                if img.mode not in ("P", "L", "I", "I;16"):
                    raise ValueError(f"{png}: expected a palette/grayscale class-index PNG, got mode {img.mode}")
                arr = np.asarray(img)
                break
        else:
            raise FileNotFoundError(f"no class mask for {stem} under {voc_dir} "
                                    "(SegmentationClass/*.npy, SegmentationClassPNG/*.png, SegmentationClass/*.png)")
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"{stem}: class mask of shape {arr.shape}, range {arr.min()}..{arr.max()} is not a "
                         "2-D uint8 label map")
    return arr.astype(np.uint8)


# ------------------------------------------------------------------------------------------------------- parts
def _make_seg(root: str, out_dir: str) -> Dict:
    voc_dir = next((os.path.join(root, s) for s in SEG_SOURCES if os.path.isdir(os.path.join(root, s))), None)
    if voc_dir is None:
        raise FileNotFoundError(f"none of {[os.path.join(root, s) for s in SEG_SOURCES]} exists; "
                                f"labelme-examples: {_HINT}")
    classes = [c.strip() for c in _read_bytes(os.path.join(voc_dir, "class_names.txt")).decode("utf-8").splitlines()
               if c.strip()]
    stems = _list_stems(os.path.join(voc_dir, "JPEGImages"), ".jpg")
    if not stems:
        raise FileNotFoundError(f"no photos in {voc_dir}/JPEGImages; labelme-examples: {_HINT}")
    seg_dir = os.path.join(out_dir, "seg")
    dirs = {}
    for split in SPLITS:
        dirs[split] = (os.path.join(seg_dir, "images", split), os.path.join(seg_dir, "annotations", split))
        for d in dirs[split]:
            os.makedirs(d, exist_ok=True)
    present = set()
    for stem in stems:
        photo = _read_bytes(os.path.join(voc_dir, "JPEGImages", stem + ".jpg"))
        width, height = Image.open(io.BytesIO(photo)).size
        mask = _read_class_mask(voc_dir, stem)
        if mask.shape != (height, width):
            raise ValueError(f"{stem}: mask {mask.shape} does not match the photo's (H,W) = {(height, width)}")
        valid = mask[mask != IGNORE_INDEX]
        if valid.size and int(valid.max()) >= len(classes):
            raise ValueError(f"{stem}: label {int(valid.max())} but class_names.txt lists {len(classes)} classes")
        present.update(int(v) for v in np.unique(mask))
        for split in SPLITS:
            img_dir, ann_dir = dirs[split]
            with open(os.path.join(img_dir, stem + ".jpg"), "wb") as f:
                f.write(photo)
            Image.fromarray(mask, mode="L").save(os.path.join(ann_dir, stem + ".png"), format="PNG",
                                                 compress_level=6)
    classes_file = os.path.join(seg_dir, "classes.txt")
    with open(classes_file, "w", encoding="utf-8") as f:
        f.write("\n".join(classes) + "\n")
    return dict(source=voc_dir, root=seg_dir, classes=classes, classes_file=classes_file, stems=stems,
                labels_present=sorted(present),
                splits={s: dict(img_dir=dirs[s][0], ann_dir=dirs[s][1], num_images=len(stems)) for s in SPLITS})


def _make_coco(root: str, out_dir: str) -> Dict:
    src_dir = os.path.join(root, COCO_SOURCE)
    src_json = os.path.join(src_dir, "annotations.json")
    coco = json.loads(_read_bytes(src_json).decode("utf-8"))
    background = {c["id"] for c in coco["categories"] if c.get("name") == "_background_"}
    coco["categories"] = [c for c in coco["categories"] if c["id"] not in background]
    anns = [a for a in coco["annotations"] if a["category_id"] not in background]

    img_ids = [im["id"] for im in coco["images"]]
    img_shift = 1 if img_ids and min(img_ids) == 0 else 0
    ann_shift = 1 if anns and min(a["id"] for a in anns) == 0 else 0

    coco_dir = os.path.join(out_dir, "coco")
    img_out = os.path.join(coco_dir, "images")
    os.makedirs(img_out, exist_ok=True)
    images = []
    for im in coco["images"]:
        im = dict(im)
        src = os.path.join(src_dir, im["file_name"])
        base = os.path.basename(im["file_name"])
        with open(os.path.join(img_out, base), "wb") as f:
            f.write(_read_bytes(src))
        im["file_name"] = base
        im["id"] = im["id"] + img_shift
        images.append(im)
    new_anns = []
    for a in anns:
        a = dict(a)
        a["id"] = a["id"] + ann_shift
        a["image_id"] = a["image_id"] + img_shift
        new_anns.append(a)
    coco["images"], coco["annotations"] = images, new_anns
    coco.pop("type", None)  # legacy field, unused by pycocotools / mmdet
    out_json = os.path.join(coco_dir, "instances.json")
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(coco, f, indent=1)
    return dict(source=src_json, json=out_json, img_dir=img_out, num_images=len(images),
                num_annotations=len(new_anns), categories=[c["name"] for c in coco["categories"]],
                dropped_categories=sorted(background), image_id_shift=img_shift, ann_id_shift=ann_shift)


def make_labelme(out_dir: str, root: str = LABELME_ROOT, verbose: bool = True) -> Dict:
    """Write ``out_dir/seg`` and ``out_dir/coco`` (layout in the module docstring); return paths and counts.

    Raises FileNotFoundError (with an ``apt-get install labelme-examples`` hint) if the package is missing.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"labelme examples not found: {root} does not exist ({_HINT})")
    out_dir = os.path.abspath(out_dir)
    seg = _make_seg(root, out_dir)
    coco = _make_coco(root, out_dir)
    if verbose:
        print(f"[make_labelme] seg: {len(seg['stems'])} photos (in both training and validation), "
              f"{len(seg['classes'])} classes, labels present {seg['labels_present']} -> {seg['root']}")
        print(f"[make_labelme] coco: {coco['num_images']} images, {coco['num_annotations']} annotations, "
              f"{len(coco['categories'])} categories (dropped ids {coco['dropped_categories']}, image ids +"
              f"{coco['image_id_shift']}, annotation ids +{coco['ann_id_shift']}) -> {coco['json']}")
    return dict(out_dir=out_dir, root=root, seg=seg, coco=coco)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/make_labelme_data.py``: 0, or 1 with an ``error: ...`` line when the examples are missing."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="data/labelme", help="output folder (default: data/labelme)")
    p.add_argument("--root", default=LABELME_ROOT, help=f"labelme examples folder (default: {LABELME_ROOT})")
    args = p.parse_args(argv)
    try:
        make_labelme(args.out, root=args.root)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

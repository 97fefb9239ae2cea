"""Downstream data generators: classification.transfer.downstream_data.composite (tools/make_downstream_data.py) and
classification.transfer.downstream_data.labelme (tools/make_labelme_data.py)."""
import contextlib
import copy
import gzip
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from classification.transfer.downstream_data import composite as composite_module, labelme as labelme_module

FMNIST_ROOT = "/usr/share/datasets/fashion-mnist"
LABELME_DOC = "/usr/share/doc/labelme-examples"
LABELME_ROOT = os.path.join(LABELME_DOC, "examples")


pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

needs_fmnist = pytest.mark.needs_data(os.path.join(FMNIST_ROOT, "train-images-idx3-ubyte.gz"))
needs_labelme = pytest.mark.needs_data(LABELME_ROOT)


@pytest.fixture(scope="module")
def composite_tool():
    return composite_module


@pytest.fixture(scope="module")
def labelme_tool():
    return labelme_module


@pytest.fixture(scope="module")
def composite(composite_tool, tmp_path_factory):
    out = tmp_path_factory.mktemp("composite_a")
    info = composite_tool.make_composite(str(out), num_train=6, num_val=3, size=64, seed=0, verbose=False)
    return out, info


def _tree(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files


def _quiet_coco(dataset):
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(dataset)
        coco.createIndex()
    return coco


def _gt_as_predictions_ap(coco_gt, iou_type):
    """COCOeval of the ground truth against itself (score 1.0): AP must be exactly 1."""
    from pycocotools.cocoeval import COCOeval
    dets = []
    for ann in coco_gt.dataset["annotations"]:
        det = dict(image_id=ann["image_id"], category_id=ann["category_id"], score=1.0)
        if iou_type == "bbox":
            det["bbox"] = list(ann["bbox"])
        else:
            det["segmentation"] = copy.deepcopy(ann["segmentation"])
        dets.append(det)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


# ------------------------------------------------------------------------------------------------------ composite
@needs_fmnist
def test_composite_layout(composite):
    out, info = composite
    for split, n, suffix in (("training", 6, "train"), ("validation", 3, "val")):
        imgs = sorted(os.listdir(out / "images" / split))
        anns = sorted(os.listdir(out / "annotations" / split))
        assert imgs == [f"{i:06d}.jpg" for i in range(n)]
        assert anns == [f"{i:06d}.png" for i in range(n)]
        assert info["splits"][split]["num_images"] == n
        assert info["splits"][split]["coco_json"] == str(out / "annotations" / f"instances_{suffix}.json")
        with Image.open(out / "images" / split / imgs[0]) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
    classes = (out / "classes.txt").read_text().splitlines()
    assert len(classes) == 11 and classes[0] == "background" and classes[1] == "T-shirt/top"


@needs_fmnist
def test_composite_deterministic(composite, composite_tool, tmp_path):
    out_a, _ = composite
    out_b, out_c = tmp_path / "b", tmp_path / "c"
    composite_tool.make_composite(str(out_b), num_train=6, num_val=3, size=64, seed=0, verbose=False)
    files_a, files_b = _tree(out_a), _tree(out_b)
    assert sorted(files_a) == sorted(files_b)
    for name in files_a:
        assert files_a[name] == files_b[name], f"{name} differs between two runs with the same seed"
    composite_tool.make_composite(str(out_c), num_train=6, num_val=3, size=64, seed=1, verbose=False)
    files_c = _tree(out_c)
    images = [n for n in files_a if n.endswith((".jpg", ".png"))]
    assert any(files_a[n] != files_c.get(n) for n in images), "a different seed gave the same images"
    # the validation split has its own random stream: it does not change with num_train
    out_d = tmp_path / "d"
    composite_tool.make_composite(str(out_d), num_train=2, num_val=3, size=64, seed=0, verbose=False)
    files_d = _tree(out_d)
    val = [n for n in files_a if "validation" in n or n.endswith("instances_val.json")]
    assert val and all(files_a[n] == files_d[n] for n in val)


@needs_fmnist
@pytest.mark.parametrize("suffix", ["train", "val"])
def test_composite_coco_ap_is_one(composite, suffix):
    out, _ = composite
    with open(out / "annotations" / f"instances_{suffix}.json") as f:
        dataset = json.load(f)
    assert [c["id"] for c in dataset["categories"]] == list(range(1, 11))
    assert [im["id"] for im in dataset["images"]] == list(range(1, len(dataset["images"]) + 1))
    assert dataset["annotations"], "no objects annotated"
    assert min(a["id"] for a in dataset["annotations"]) == 1
    coco = _quiet_coco(dataset)
    assert _gt_as_predictions_ap(coco, "bbox") == pytest.approx(1.0)
    assert _gt_as_predictions_ap(coco, "segm") == pytest.approx(1.0)


@needs_fmnist
def test_composite_masks_match_labels(composite):
    from pycocotools import mask as mask_utils
    out, _ = composite
    for split, suffix in (("training", "train"), ("validation", "val")):
        with open(out / "annotations" / f"instances_{suffix}.json") as f:
            dataset = json.load(f)
        by_image = {}
        for ann in dataset["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        for im in dataset["images"]:
            assert os.path.isfile(out / "images" / split / im["file_name"])
            stem = os.path.splitext(im["file_name"])[0]
            label = np.array(Image.open(out / "annotations" / split / f"{stem}.png"))
            assert label.dtype == np.uint8 and label.shape == (im["height"], im["width"])
            assert label.max() <= 10
            for ann in by_image.get(im["id"], []):
                assert ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= 10
                m = mask_utils.decode(ann["segmentation"]).astype(bool)
                assert m.sum() == ann["area"] >= 30
                assert np.all(label[m] == ann["category_id"]), "RLE mask outside its class's pixels"
                ys, xs = np.nonzero(m)
                x, y, w, h = ann["bbox"]
                assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


def test_composite_missing_fmnist(composite_tool, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        composite_tool.make_composite(str(tmp_path / "x"), num_train=1, num_val=1, size=32,
                                      fmnist_root=str(tmp_path / "nowhere"), verbose=False)


# -------------------------------------------------------------------------------------------------------- labelme
def test_labelme_missing_package(labelme_tool, tmp_path):
    with pytest.raises(FileNotFoundError, match="labelme-examples"):
        labelme_tool.make_labelme(str(tmp_path / "x"), root=str(tmp_path / "nowhere"), verbose=False)


def _check_labelme_output(out, info):
    coco_json = out / "coco" / "instances.json"
    assert info["coco"]["json"] == str(coco_json)
    with open(coco_json) as f:
        dataset = json.load(f)
    coco = _quiet_coco(dataset)
    names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
    assert names and "_background_" not in names
    assert min(coco.getImgIds()) == 1 and min(coco.getAnnIds()) == 1
    for im in coco.loadImgs(coco.getImgIds()):
        with Image.open(out / "coco" / "images" / im["file_name"]) as photo:
            assert photo.size == (im["width"], im["height"])
    assert all(a["category_id"] in coco.getCatIds() for a in dataset["annotations"])
    assert _gt_as_predictions_ap(coco, "bbox") == pytest.approx(1.0)

    classes = (out / "seg" / "classes.txt").read_text().splitlines()
    for split in ("training", "validation"):
        img_dir, ann_dir = out / "seg" / "images" / split, out / "seg" / "annotations" / split
        stems = sorted(os.path.splitext(n)[0] for n in os.listdir(img_dir))
        assert stems and stems == sorted(os.path.splitext(n)[0] for n in os.listdir(ann_dir))
        for stem in stems:
            with Image.open(img_dir / f"{stem}.jpg") as photo:
                size = photo.size
            mask = np.array(Image.open(ann_dir / f"{stem}.png"))
            assert mask.dtype == np.uint8 and (mask.shape[1], mask.shape[0]) == size
            valid = mask[mask != 255]
            assert valid.max() < len(classes)
    return dataset, classes


@needs_labelme
def test_labelme_outputs(labelme_tool, tmp_path):
    out = tmp_path / "lm"
    info = labelme_tool.make_labelme(str(out), verbose=False)
    dataset, classes = _check_labelme_output(out, info)
    assert classes[0] == "_background_"
    # the package's VOC masks carry labels beyond background for every photo
    for stem in info["seg"]["stems"]:
        mask = np.array(Image.open(out / "seg" / "annotations" / "training" / f"{stem}.png"))
        assert np.any((mask > 0) & (mask != 255))


@needs_labelme
def test_labelme_gzipped_sources(labelme_tool, tmp_path):
    """Debian may gzip documentation files: a copy of the examples with json/txt/npy/png gzipped gives the same."""
    root = tmp_path / "examples"
    for sub in ("semantic_segmentation/data_dataset_voc", "instance_segmentation/data_dataset_coco"):
        shutil.copytree(os.path.join(LABELME_ROOT, sub), root / sub)
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith((".json", ".txt", ".npy", ".png")):
                p = os.path.join(dirpath, n)
                with open(p, "rb") as src, gzip.open(p + ".gz", "wb") as dst:
                    dst.write(src.read())
                os.remove(p)
    ref, gz = tmp_path / "ref", tmp_path / "gz"
    labelme_tool.make_labelme(str(ref), verbose=False)
    info = labelme_tool.make_labelme(str(gz), root=str(root), verbose=False)
    _check_labelme_output(gz, info)
    ref_files, gz_files = _tree(ref), _tree(gz)
    assert sorted(ref_files) == sorted(gz_files)
    assert all(ref_files[n] == gz_files[n] for n in ref_files)


def test_all_background_miou_exact_on_hand_made_label_maps(tmp_path):
    """Two 4×4 maps: 22 background pixels of 32, classes 3 and 7 present, the 8 others absent (left out, as mmseg's
    NaN): background IoU 22/32, the present classes 0 → mIoU = 100 · (22/32) / 3."""
    a = np.zeros((4, 4), np.uint8)
    a[0, :3] = 3
    b = np.zeros((4, 4), np.uint8)
    b[1:, 3] = 7
    b[3, :3] = 7
    b[0, 0] = 3
    for name, arr in (("0.png", a), ("1.png", b)):
        Image.fromarray(arr, mode="L").save(tmp_path / name)
    assert composite_module.all_background_miou(str(tmp_path)) == pytest.approx(100 * (22 / 32) / 3, abs=1e-12)
    with pytest.raises(FileNotFoundError, match="no label maps"):
        composite_module.all_background_miou(str(tmp_path / "missing"))


@needs_fmnist
def test_all_background_miou_is_what_mmseg_reports_for_background_everywhere(tmp_path):
    import torch
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData

    root = tmp_path / "composite"
    composite_module.make_composite(str(root), num_train=0, num_val=3, size=64, seed=7, verbose=False)
    folder = root / "annotations" / "validation"
    metric = IoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = dict(classes=[str(i) for i in range(11)])
    for name in sorted(os.listdir(folder)):
        labels = torch.from_numpy(np.asarray(Image.open(folder / name)).astype(np.int64))[None]
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels), pred_sem_seg=PixelData(data=torch.zeros_like(labels)))
        metric.process([], [sample.to_dict()])
    mmseg_miou = metric.compute_metrics(metric.results)["mIoU"]  # rounded to 2 decimals by mmseg
    floor = composite_module.all_background_miou(str(folder))
    assert round(floor, 2) == pytest.approx(mmseg_miou, abs=1e-9) and 0 < floor < 100

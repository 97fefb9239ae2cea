"""Every multi-scale + flip (``*_ms.py``) segmentation config, found by glob (new datasets' ``_ms`` configs join
without an edit here), tests each scale both as is and mirrored: its test pipeline is run, through mmseg's own
transforms, on an image and label map with no left-right symmetry, and for every scale the two views must be a pair
(unflipped, horizontally flipped) whose pixels are exact mirrors of each other. Both views carry the label map as
loaded (mmseg's TTA loads it after the resize and flip: SegTTAModel maps each view's prediction back to the original
frame before averaging and scoring).

A flip list whose entries both have prob 0 (or both 1), a vertical flip, a missing flip stage, or labels that follow
the view (scored against predictions mapped back) fails here for the configs that have it.
"""
import functools
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from PIL import Image

import segmentation  # noqa: F401  (registration)
from classification.experiments.reproduction.paper_plan import plan_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MS_CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs/segmentation/*_ms.py")))


def _config(path: str):
    """The config through the project's memoised loader (about 3 s per Segmenter config with mmengine's own)."""
    return plan_config(osp.relpath(path, ROOT), "_ms config")


def _tta_pipeline(path: str) -> list:
    cfg = _config(path)
    assert cfg.model.type == "SegTTAModel", path
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t["type"] for t in pipeline].count("TestTimeAug") == 1, path
    return pipeline


@functools.lru_cache(maxsize=None)
def _by_pipeline():
    """{first config path: [config names]} per distinct test pipeline: configs that share one are run once."""
    groups = {}
    for path in MS_CONFIGS:
        key = json.dumps(_config(path).test_dataloader.dataset.pipeline, sort_keys=True, default=str)
        groups.setdefault(key, []).append(path)
    return {paths[0]: [osp.basename(p) for p in paths] for paths in groups.values()}


def test_the_glob_finds_the_ms_configs_of_every_dataset():
    names = [osp.basename(p) for p in MS_CONFIGS]
    assert len(names) >= 20
    for dataset in ("ade20k", "pascal-context", "composite"):
        assert any(dataset in n for n in names), dataset


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """An image (60,90,3) and label map (60,90) with no mirror symmetry: a horizontal ramp plus an off-centre block."""
    folder = tmp_path_factory.mktemp("tta")
    img = np.zeros((60, 90, 3), dtype=np.uint8)
    img[..., 0] = np.linspace(0, 255, 90, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(255, 0, 60, dtype=np.uint8)[:, None]
    img[10:30, 5:25, 2] = 200
    labels = np.zeros((60, 90), dtype=np.uint8)
    labels[10:30, 5:25] = 3
    labels[40:, 60:] = 1
    Image.fromarray(img).save(folder / "img.png")
    Image.fromarray(labels).save(folder / "seg.png")
    return str(folder / "img.png"), str(folder / "seg.png")


@pytest.mark.parametrize("config", sorted(_by_pipeline()), ids=osp.basename)
def test_each_scale_is_tested_unflipped_and_mirrored(config, sample):
    init_default_scope("mmseg")
    pipeline = Compose(_tta_pipeline(config))
    img_path, seg_path = sample
    labels = torch.from_numpy(np.array(Image.open(seg_path))).long()
    out = pipeline(dict(img_path=img_path, seg_map_path=seg_path, reduce_zero_label=False, seg_fields=[]))
    inputs, samples = out["inputs"], out["data_samples"]
    assert len(inputs) == len(samples) >= 2
    by_shape = {}  # TestTimeAug's views come scale by scale, flips innermost: pairs in order (two scales may end
    for i, (x, s) in enumerate(zip(inputs, samples)):  # at one shape: Segmenter's Pascal Context test upsamples
        by_shape.setdefault((i // 2, tuple(x.shape)), []).append((x, s))  # the small ones to a short side of 480)
    for shape, variants in by_shape.items():
        flips = sorted(bool(s.metainfo["flip"]) for _, s in variants)
        assert flips == [False, True], (shape, flips, _by_pipeline()[config])
        (plain, plain_s), (mirrored, mirrored_s) = sorted(variants, key=lambda v: bool(v[1].metainfo["flip"]))
        assert mirrored_s.metainfo["flip_direction"] == "horizontal"
        assert not torch.equal(plain, plain.flip(-1))  # the image is not its own mirror at this scale
        assert torch.equal(mirrored, plain.flip(-1)), shape
        assert torch.equal(plain_s.gt_sem_seg.data[0], labels) and torch.equal(mirrored_s.gt_sem_seg.data[0], labels)


def test_every_ms_config_has_the_tta_pipeline_checked_above():
    covered = {name for names in _by_pipeline().values() for name in names}
    assert covered == {osp.basename(p) for p in MS_CONFIGS}
    for path in MS_CONFIGS:
        _tta_pipeline(path)

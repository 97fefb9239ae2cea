"""Table 2's Pascal Context configs on the generated tiny set in the converter's layout: mmseg's real
PascalContextDataset reads it with 60 classes (label 0 = background kept, no shift), and a small Segmenter of the real
config (one 32-d layer) trains a few iterations, tests and multi-scale-tests through tools/train.py / tools/test.py."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from classification.transfer.downstream_data.pascal_context import VOC, make_pascal_context

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, "configs/segmentation/segmenter-mask_deit-t_mixpro_8xb2-80k_pascal-context-480x480.py")
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def test_pascal_context_dataset_reads_the_generated_set_with_60_classes(tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    import segmentation  # noqa: F401
    written = make_pascal_context(str(tmp_path), num_train=3, num_val=2, seed=1)
    init_default_scope("mmseg")
    cfg = Config.fromfile(CONFIG)
    for split, loader in (("train", cfg.train_dataloader), ("val", cfg.test_dataloader)):
        ds_cfg = loader.dataset
        ds_cfg.data_root = str(tmp_path / VOC)
        ds_cfg.pipeline = [dict(type="LoadAnnotations")]  # the labels as mmseg hands them to the model
        dataset = DATASETS.build(ds_cfg)
        assert type(dataset).__name__ == "PascalContextDataset" and len(dataset.metainfo["classes"]) == 60
        assert dataset.metainfo["classes"][0] == "background" and not dataset.reduce_zero_label
        ids = [osp.splitext(osp.basename(dataset.get_data_info(i)["seg_map_path"]))[0] for i in range(len(dataset))]
        assert ids == written[split]["ids"]
        for i, name in enumerate(ids):  # the label values written, unchanged (59 stays 59, 0 stays 0)
            np.testing.assert_array_equal(dataset[i]["gt_seg_map"], written[split]["labels"][name])
    assert {int(v) for lab in written["train"]["labels"].values() for v in np.unique(lab)} <= {0, 1, 15, 37, 59}


def _tiny(prefix=""):
    """--cfg-options of a one-layer, 32-d version of the config's Segmenter (backbone and mask head; the data
    pipeline, scales, windows and heads' structure stay the config's), with a random backbone."""
    dims = [f"{prefix}backbone.{k}" for k in ("embed_dims=32", "num_heads=2", "num_layers=1")]
    dims += [f"{prefix}decode_head.{k}" for k in ("in_channels=32", "channels=32", "embed_dims=32", "num_heads=2",
                                                  "num_layers=1")]
    return dims + [f"{prefix}backbone.init_cfg=None"]


@pytest.mark.slow
def test_segmenter_trains_tests_and_multiscale_tests_on_pascal_context(tmp_path):
    make_pascal_context(str(tmp_path / "pc"), num_train=4, num_val=2, seed=0)
    root = str(tmp_path / "pc" / VOC)
    loader = ["num_workers=0", "persistent_workers=False"]
    train = subprocess.run(
        [sys.executable, "tools/train.py", CONFIG, "--work-dir", str(tmp_path / "train"), "--cfg-options",
         *[f"model.{o}" for o in _tiny()], f"train_dataloader.dataset.data_root={root}",
         *[f"train_dataloader.{o}" for o in loader], "val_dataloader=None", "val_cfg=None", "val_evaluator=None",
         "train_cfg.max_iters=2", "default_hooks.checkpoint.interval=2", "param_scheduler.0.end=2"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    ckpt = tmp_path / "train" / "iter_2.pth"
    assert ckpt.is_file()
    results = {}
    for suffix, prefix in (("", "model."), ("_ms", "model.module.")):
        work = tmp_path / f"test{suffix}"
        test = subprocess.run(
            [sys.executable, "tools/test.py", CONFIG.replace(".py", f"{suffix}.py"), str(ckpt), "--work-dir",
             str(work), "--cfg-options", *[prefix + o for o in _tiny()], f"test_dataloader.dataset.data_root={root}",
             *[f"test_dataloader.{o}" for o in loader]],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
        log = test.stdout + test.stderr
        assert test.returncode == 0, log[-3000:]
        assert "Iter(test) [2/2]" in log, log[-3000:]
        for name in ("background", "aeroplane", "wood"):  # mmseg's per-class table: the 60 classes
            assert re.search(rf"\|\s+{name}\s+\|", log), (name, log[-3000:])
        results[suffix] = json.loads((work / "metrics.json").read_text())["metrics"]
        assert 0 <= results[suffix]["mIoU"] <= 100
    assert Config.fromfile(CONFIG.replace(".py", "_ms.py")).model.type == "SegTTAModel"

"""The mistakes of issue #31 each end in one ``error:`` line and exit status 2, before any work: typed
``--cfg-options`` values, batch sizes 0 / 1 (training and tools/test.py), a corrupt JPEG without ``skip_corrupt``
(also from a data-loader worker), an unwritable work dir, a dataset smaller than one batch with ``drop_last``, a top-k
of as many classes as there are, more class folders than classes, the reproduction's and the demo's argument errors.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import classification.register_all  # noqa: F401  (registration)
from classification.engine import launch
from classification.engine.config_check import validate_training_config
from classification.foundation.errors import USER_ERROR_EXIT, UserError
from classification.experiments import demo
from classification.experiments.reproduction import cli

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
DEIT = osp.join(ROOT, "configs/classification/deit-t_mixpro_8xb128-300e_in1k.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.needs_data(FMNIST)


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_line(proc) -> str:
    assert proc.returncode == USER_ERROR_EXIT, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def image_folder(root, split, per_class, classes=("circle", "square", "star"), size=40):
    """``root/split/<class>/<i>.jpg``: ``per_class`` random RGB JPEGs per class."""
    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(osp.join(root, split, name), exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(osp.join(root, split, name, f"{i}.jpg"))


@needs_fmnist
@pytest.mark.parametrize("option,expected", [
    ("train_dataloader.batch_size=abc", "--cfg-options train_dataloader.batch_size='abc': expected an integer, like "
                                        "the value it replaces (128)"),
    ("optim_wrapper.optimizer.lr=abc", "--cfg-options optim_wrapper.optimizer.lr='abc': expected a number, like the "
                                       "value it replaces (0.004)"),
    ("randomness.deterministic=3", "--cfg-options randomness.deterministic=3: expected True or False"),
    ("train_dataloader.batch_size=0", "error: train_dataloader.batch_size=0: must be an integer of at least 1"),
    ("train_dataloader.batch_size=1", "error: train_dataloader.batch_size=1: mixing pairs samples within a batch "
                                      "and needs at least 2 per process"),
])
def test_typed_options_and_batch_sizes_of_training(tool, tmp_path, option, expected):
    work = tmp_path / "w"
    assert expected in tool(launch.main, [CONFIG, "--work-dir", str(work), "--cfg-options", option])
    assert not work.exists(), "the run started"


def test_a_number_may_replace_a_number(tmp_path):
    cfg = launch.prepare_config(CONFIG, work_dir=str(tmp_path), cfg_options={
        "optim_wrapper.optimizer.lr": 1, "train_dataloader.batch_size": 32, "randomness.deterministic": True})
    assert (cfg.optim_wrapper.optimizer.lr, cfg.train_dataloader.batch_size) == (1, 32)


def test_validate_training_config_raises_user_errors():
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.drop_last = False
    with pytest.raises(UserError, match="drop_last must be True when mixing"):
        validate_training_config(cfg)


@needs_fmnist
def test_test_tool_with_batch_size_0(tool, tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": MODELS.build(Config.fromfile(CONFIG).model).state_dict()}, path)
    line = tool(launch.run_test, [CONFIG, str(path), "--work-dir", str(tmp_path / "t"), "--cfg-options",
                                  "test_dataloader.batch_size=0"])
    assert line == "error: test_dataloader.batch_size=0: must be an integer of at least 1"


@needs_fmnist
def test_an_unwritable_work_dir_is_one_line_naming_it(tool):
    work = "/sys/mixpro-cannot-write/w"  # sysfs refuses new folders, even to root
    line = tool(launch.main, [CONFIG, "--work-dir", work, "--cfg-options", "train_dataloader.dataset.limit=256"])
    assert line.startswith(f"error: cannot write into the work dir {work}: ")


@pytest.fixture
def deit_checkpoint(tmp_path):
    """A random DeiT-T MixClassifier with 3 classes, saved."""
    cfg = Config.fromfile(DEIT)
    cfg.model.num_classes = 3
    path = tmp_path / "deit3.pth"
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, path)
    return str(path)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_jpeg_names_the_file(tmp_path, deit_checkpoint, workers):
    data = tmp_path / "data"
    image_folder(str(data), "val", per_class=2)
    bad = data / "val" / "circle" / "0.jpg"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    options = [f"test_dataloader.dataset.root={data}", "test_dataloader.batch_size=6", "model.num_classes=3",
               f"test_dataloader.num_workers={workers}", "test_dataloader.persistent_workers=False",
               "test_evaluator.topk=(1,)"]
    line = one_line(run_script("tools/test.py", DEIT, deit_checkpoint, "--work-dir", str(tmp_path / "t"),
                               "--cfg-options", *options))
    assert line.startswith(f"error: {bad}: cannot decode image (")


def test_top_k_of_as_many_classes_and_more_class_folders_than_classes(tool, tmp_path, deit_checkpoint):
    data = tmp_path / "data"
    image_folder(str(data), "val", per_class=1)
    options = [f"test_dataloader.dataset.root={data}", "model.num_classes=3"]
    line = tool(launch.run_test, [DEIT, deit_checkpoint, "--work-dir", str(tmp_path / "t"), "--cfg-options",
                                  *options])
    assert line == ("error: test_evaluator.topk=(1, 5): top-5 of 3 classes counts every prediction as a hit; use k "
                    "below 3, e.g. test_evaluator.topk=(1,)")
    line = tool(launch.run_test, [DEIT, deit_checkpoint, "--work-dir", str(tmp_path / "t"), "--cfg-options",
                                  f"test_dataloader.dataset.root={data}", "model.num_classes=2"])
    assert line == (f"error: test_dataloader.dataset: {data}/val holds 3 class folders but the model has "
                    f"num_classes=2: set model.num_classes=3")
    # the model's 1000 classes do not hide that the folder holds 3
    line = tool(launch.main, [DEIT, "--work-dir", str(tmp_path / "w"), "--cfg-options",
                              f"train_dataloader.dataset.root={data}", "train_dataloader.dataset.split=val",
                              f"val_dataloader.dataset.root={data}"])
    assert "val_evaluator.topk=(1, 5): top-5 of 3 classes" in line


@pytest.mark.slow
def test_a_dataset_smaller_than_one_batch_with_drop_last(tool, tmp_path):
    data = tmp_path / "data"
    for split in ("train", "val"):
        image_folder(str(data), split, per_class=2)
    work = tmp_path / "w"
    line = tool(launch.main, [DEIT, "--work-dir", str(work), "--cfg-options", "model.num_classes=3",
                              f"train_dataloader.dataset.root={data}", f"val_dataloader.dataset.root={data}",
                              "train_dataloader.batch_size=8", "train_dataloader.num_workers=0",
                              "train_dataloader.persistent_workers=False", "val_evaluator.topk=(1,)"])
    assert line == (f"error: the data loader of ImageNetFolder ({data}) has no batch: 6 samples, fewer than one "
                    f"batch of 8 per process × 1 process(es) with drop_last=True; lower its batch_size or add samples")
    assert not [f for f in os.listdir(work) if f.endswith(".pth")]


def test_reproduction_argument_errors(tool):
    assert tool(cli.main, ["--seeds", "0,x"]) == "error: --seeds takes comma-separated integers, got '0,x'"
    assert "no config for method(s) ['mixpor']" in tool(cli.main, ["--methods", "mixpor", "--report-only"])
    line = tool(cli.main, ["--set", "downstream", "--heads", "fcn", "--report-only"])
    assert line.startswith("error: --heads 'fcn': choose distinct names from ")
    line = one_line(run_script("tools/reproduce.py", "--seeds", "0,x"))  # the real command line's exit path
    assert line == "error: --seeds takes comma-separated integers, got '0,x'"


def test_demo_without_its_pretrained_checkpoint(tool, tmp_path):
    line = tool(demo.main, ["--work-dir", str(tmp_path), "--stages", "segmentation", "--epochs", "3"])
    assert line == f"error: {tmp_path}/epoch_3.pth not found: run the pretrain stage first (--stages pretrain)"

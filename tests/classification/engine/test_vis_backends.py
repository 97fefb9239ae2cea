"""Curves where cluster users look at them (#31 item 7): ``tools/train.py --vis tensorboard|wandb`` adds mmengine's
TensorBoard / W&B backends next to the local scalars.json; the LoggerHook hands them every logged value, the
label-policy statistics among them; curve.png stays. The event-file test needs the optional tensorboard package
(skipped without it, which the strict CI mode turns into a failure)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from classification.engine import launch
from classification.foundation.errors import USER_ERROR_EXIT, run_tool

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"


def test_vis_adds_the_backends_next_to_the_local_one():
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = "work_dirs/branch-b"
    launch.add_vis_backends(cfg, ["tensorboard", "wandb", "tensorboard"])
    assert cfg.visualizer.vis_backends == [
        dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend"),
        dict(type="WandbVisBackend", init_kwargs=dict(project="mixpro", name="branch-b"))]
    own = Config(dict(work_dir="w", visualizer=dict(type="Visualizer", name="mine",
                                                     vis_backends=[dict(type="TensorboardVisBackend")])))
    launch.add_vis_backends(own, ["tensorboard"])  # a config's own visualizer is kept, nothing doubled
    assert own.visualizer == dict(type="Visualizer", name="mine", vis_backends=[dict(type="TensorboardVisBackend")])
    untouched = Config.fromfile(CONFIG)
    launch.add_vis_backends(untouched, [])
    assert "visualizer" not in untouched
    assert launch.parse_args([CONFIG, "--vis", "tensorboard", "wandb"]).vis == ["tensorboard", "wandb"]


def test_a_missing_vis_package_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as info:
        run_tool(lambda: launch.main([CONFIG, "--work-dir", str(tmp_path / "w"), "--vis", "tensorboard"]))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == USER_ERROR_EXIT and err == [
        "error: --vis tensorboard needs the 'tensorboard' package, which is not installed: pip install tensorboard"]
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_tensorboard_gets_the_label_policy_statistics(tmp_path):
    pytest.importorskip("tensorboard", reason="--vis tensorboard needs the optional tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    work = tmp_path / "w"
    small = ["train_dataloader.dataset.limit=256", "val_dataloader.dataset.limit=100", "train_dataloader.batch_size=64",
             "default_hooks.logger.interval=1", "train_cfg.val_interval=1"]
    proc = subprocess.run([sys.executable, "tools/train.py", CONFIG, "--work-dir", str(work), "--epochs", "1",
                           "--vis", "tensorboard", "--cfg-options", *small], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get(
                              "PYTHONPATH")])), OMP_NUM_THREADS="1"), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = glob.glob(str(work / "*" / "vis_data" / "events.out.tfevents.*"))
    assert len(events) == 1
    board = EventAccumulator(events[0])
    board.Reload()
    local = [json.loads(line) for line in open(glob.glob(str(work / "*" / "vis_data" / "scalars.json"))[0])]
    for key in ("loss", "lr", "pal_alpha", "lam_gap", "attn_entropy", "top1"):
        assert key in board.Tags()["scalars"], (key, board.Tags()["scalars"])
        logged = [(e.step, e.value) for e in board.Scalars(key)]
        expected = [(r["step"], r[key]) for r in local if key in r]  # the same values, the same steps
        assert [s for s, _ in logged] == [s for s, _ in expected] and len(logged) >= 1
        assert all(abs(a - b) <= 1e-5 * max(1.0, abs(b)) for (_, a), (_, b) in zip(logged, expected)), key
    assert (work / "curve.png").is_file()

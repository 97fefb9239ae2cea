"""`make demo`: its pipeline end to end in the --quick form (pretrain → convert → Segmenter → Mask R-CNN, one table,
two fine-tunes at a time: the parallel path of a 2-core machine), and the settings of its runs (the pretraining
epochs and schedule, the downstream configs' image size, batch, iterations, loaders and single evaluation)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from classification.experiments import demo
from classification.transfer.downstream_data.composite import all_background_miou

from classification.foundation.host import ROOT
FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_quick_demo_runs_every_stage_and_writes_the_table(tmp_path):
    work = tmp_path / "demo"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "tools/demo.py", "--quick", "--epochs", "1", "--jobs", "2",
                           "--work-dir", str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = json.loads((work / "results.json").read_text())
    assert 0 <= results["pretrain"]["top1"] <= 100 and results["pretrain"]["epochs"] == 1
    for init in ("random", "mixpro"):
        assert 0 <= results["segmentation"][init]["mIoU"] <= 100
        assert 0 <= results["detection"][init]["bbox_AP"] <= 100 and 0 <= results["detection"][init]["segm_AP"] <= 100
    table = (work / "results.md").read_text()
    assert "| random init | — |" in table and "| MixPro, Fashion-MNIST | " in table
    floor = all_background_miou(str(work / "composite" / "annotations" / "validation"))
    assert results["floor"]["mIoU"] == floor and f"| floor: all background | — | {floor:.2f} | — | — |" in table
    assert "seed 0" in table and "tools/reproduce.py --set downstream" in table
    assert "Time on this machine" in table and "(fine-tunes 2 at a time)" in table
    # the parallel path: the pretraining and the conversion here (all the cores; every fine-tune waits for them),
    # then the four fine-tunes two at a time, each in its own worker process, the longer Mask R-CNN ones first
    schedule = results["schedule"]
    assert schedule["jobs"] == 2
    runs = schedule["stages"]
    assert set(runs) == {"pretrain", "convert", "segmentation/random", "segmentation/mixpro", "detection/random",
                         "detection/mixpro"}
    here = runs["pretrain"]["pid"]
    assert runs["convert"]["pid"] == here
    workers = [run["pid"] for name, run in runs.items() if name not in ("pretrain", "convert")]
    assert len(set(workers)) == 4 and here not in workers
    assert runs["convert"]["started"] >= runs["pretrain"]["finished"]
    for name, run in runs.items():
        if run["pid"] in workers:
            assert run["started"] >= runs["convert"]["finished"], name
    for run in runs.values():  # never more than 2 workers at once
        assert sum(other["started"] <= run["started"] < other["finished"] for other in runs.values()
                   if other["pid"] in workers) <= 2
    assert max(runs["detection/random"]["started"], runs["detection/mixpro"]["started"]) <= min(
        runs["segmentation/random"]["started"], runs["segmentation/mixpro"]["started"])
    assert results["pretrain"]["threads"] == 1  # OMP_NUM_THREADS=1 above; without it: all usable cores
    assert all(results[task][init]["threads"] == 1 for task in ("segmentation", "detection")
               for init in ("random", "mixpro"))
    for name in ("curve.png", "maskmix_grid.png", "tiny-vit_mixpro_mmseg-vit.pth", "epoch_1.pth"):
        assert (work / name).is_file(), name
    # the pretrained runs really loaded the converted classifier
    seg_logs = "".join(p.read_text() for p in (work / "segmentation_mixpro").rglob("*.log"))
    assert "tiny-vit_mixpro_mmseg-vit.pth" in seg_logs


@pytest.mark.needs_data(osp.dirname(FMNIST))
def test_pretraining_runs_the_demo_epochs_with_the_cosine_ending_there(tmp_path):
    assert demo.PRETRAIN_EPOCHS == 15
    cfg = demo.pretrain_config(demo.PRETRAIN_CONFIG, demo.PRETRAIN_EPOCHS, str(tmp_path))
    assert cfg.train_cfg.max_epochs == 15 and cfg.train_cfg.val_interval == 15  # validation once, at the end
    warmup, cosine = cfg.param_scheduler
    assert (warmup["type"], warmup["begin"], warmup["end"]) == ("LinearLR", 0, 1)
    # no T_max: mmengine's default, end − begin = 14
    assert (cosine["type"], cosine["begin"], cosine["end"], cosine.get("T_max")) == ("CosineAnnealingLR", 1, 15, None)
    assert cfg.train_dataloader.dataset.type == "FashionMNISTInMemory" and cfg.train_dataloader.num_workers == 0
    assert cfg.train_dataloader.batch_size == 128 and cfg.work_dir == str(tmp_path)
    assert cfg.randomness.seed == 0  # seeded: the same command gives the same numbers


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_downstream_runs_read_64px_images_train_briefly_and_evaluate_once(task, tmp_path):
    configs = demo.SEG_CONFIGS if task == "segmentation" else demo.DET_CONFIGS
    data, ckpt = str(tmp_path / "data"), str(tmp_path / "vit.pth")
    built = {key: demo.finetune_config(config, str(tmp_path / key), data, ckpt if key == "mixpro" else None,
                                       False, task) for key, config in configs.items()}
    for key, cfg in built.items():
        assert cfg.val_dataloader is None and cfg.val_cfg is None and cfg.val_evaluator is None
        for loader in (cfg.train_dataloader, cfg.test_dataloader):
            assert loader.num_workers == 0 and not loader.persistent_workers
            assert loader.dataset.data_root == data
            assert [t["scale"] for t in loader.dataset.pipeline if "Resize" in t["type"]] == [(64, 64)]
        assert cfg.model.backbone.img_size == (64, 64)
        assert cfg.randomness.seed == 0
    assert demo.downstream_img_size() == (64, 64)  # the converted checkpoint's grid: the backbones load strictly
    assert built["mixpro"].model.backbone.init_cfg == dict(type="Pretrained", checkpoint=ckpt)
    assert built["random"].model.backbone.get("init_cfg") is None
    # the two runs differ in the backbone's initialisation (and work_dir) only
    same = [cfg.to_dict() for cfg in built.values()]
    for cfg in same:
        cfg["model"]["backbone"].pop("init_cfg", None)
        cfg.pop("work_dir")
    assert same[0] == same[1]
    cfg = built["random"]
    if task == "segmentation":
        assert cfg.train_cfg.max_iters == 500 and cfg.train_dataloader.batch_size == 16
        assert cfg.model.data_preprocessor.size == (64, 64)
        assert [t["crop_size"] for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "RandomCrop"] == [
            (64, 64)]
        assert cfg.param_scheduler[-1]["end"] == 500
    else:
        assert cfg.train_cfg.max_epochs == 6 and cfg.train_dataloader.batch_size == 4
        assert cfg.test_evaluator.ann_file == osp.join(data, "annotations", "instances_val.json")
        assert cfg.param_scheduler[-1]["end"] == 6


def test_results_table_states_the_floor():
    runs = {"random": dict(mIoU=8.5, bbox_AP=0.7, segm_AP=0.5), "mixpro": dict(mIoU=9.1, bbox_AP=2.8, segm_AP=2.0)}
    results = {"pretrain": dict(top1=80.0), "segmentation": runs, "detection": runs, "floor": dict(mIoU=7.6123)}
    lines = demo.results_table(results).splitlines()
    assert lines[-1] == "| floor: all background | — | 7.61 | — | — |"
    assert lines[2] == "| random init | — | 8.50 | 0.7 | 0.5 |"


def test_bad_epochs_are_refused(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--epochs", "0", "--stages", "pretrain"])
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err

"""`make demo`'s pipeline end to end in its --quick form: pretrain → convert → Segmenter → Mask R-CNN, one table,
with two stages at a time (the parallel path of a 2-core machine)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
    assert "Time on this machine" in table and "(2 stages at a time)" in table
    # the parallel path: every stage but the conversion in its own worker process; the random-init fine-tunes ran
    # while the classifier pretrained, the MixPro-init ones after the conversion
    schedule = results["schedule"]
    assert schedule["jobs"] == 2
    runs = schedule["stages"]
    assert set(runs) == {"pretrain", "convert", "segmentation/random", "segmentation/mixpro", "detection/random",
                         "detection/mixpro"}
    workers = [run["pid"] for name, run in runs.items() if name != "convert"]
    assert len(set(workers)) == 5 and runs["convert"]["pid"] not in workers
    assert runs["segmentation/random"]["started"] < runs["pretrain"]["finished"]
    for run in runs.values():  # never more than 2 workers at once
        assert sum(other["started"] <= run["started"] < other["finished"] for other in runs.values()
                   if other["pid"] in workers) <= 2
    assert runs["convert"]["started"] >= runs["pretrain"]["finished"]
    for init in ("segmentation/mixpro", "detection/mixpro"):
        assert runs[init]["started"] >= runs["convert"]["finished"]
    for name in ("curve.png", "maskmix_grid.png", "tiny-vit_mixpro_mmseg-vit.pth", "epoch_1.pth"):
        assert (work / name).is_file(), name
    # the pretrained runs really loaded the converted classifier
    seg_logs = "".join(p.read_text() for p in (work / "segmentation_mixpro").rglob("*.log"))
    assert "tiny-vit_mixpro_mmseg-vit.pth" in seg_logs

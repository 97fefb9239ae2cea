"""tools/gpu_check.sh: the no-GPU message, the report, and the whole check at CPU size (--device cpu --quick)."""
import json
import os
import os.path as osp
import re
import subprocess

import pytest
import torch

from classification.benchmarks.gpu_check import main, write_report

from classification.foundation.host import ROOT


def test_gpu_check_without_a_gpu_says_so(tmp_path):
    proc = subprocess.run(["bash", "tools/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES="", OUT=str(tmp_path / "out")))
    assert proc.returncode == 2
    assert "no CUDA GPU visible" in proc.stderr and "--device cpu --quick" in proc.stderr
    assert not osp.exists(tmp_path / "out")


def test_gpu_check_report_lists_every_step_and_item(tmp_path):
    (tmp_path / "env.json").write_text(json.dumps(dict(torch="2.11.0", gpus=["NVIDIA H200"])))
    (tmp_path / "bench-mix.log").write_text("line 1\nmaskmix 1.2 ms\n")
    items = [dict(name="a.py", status="pass", seconds=1.5, loss=2.3),
             dict(name="b.py", status="skipped", seconds=0, reason="skipped: mmcv without CUDA ops")]
    (tmp_path / "segmentation.json").write_text(json.dumps(dict(step="segmentation", items=items)))
    rows = [("segmentation", "pass", "12", "-"), ("bench-mix", "pass", "3", str(tmp_path / "bench-mix.log")),
            ("nccl", "skipped (1 GPU)", "0", "-")]
    (tmp_path / "steps.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    counts = write_report(str(tmp_path), str(tmp_path / "r.md"))
    assert counts == {"pass": 1, "skipped": 1, "step pass": 1, "step skipped (1 GPU)": 1}
    md = (tmp_path / "r.md").read_text()
    assert "- gpus: ['NVIDIA H200']" in md and "| segmentation | pass | 12 |" in md
    assert "| a.py | pass | 1.5 | 2.3 |  |" in md and "skipped: mmcv without CUDA ops" in md
    assert "maskmix 1.2 ms" in md  # a step without items: its log's tail
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 0
    with open(tmp_path / "steps.tsv", "a") as f:
        f.write("detection\ttimeout\t100\t-\n")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 1


def test_gpu_check_report_survives_steps_that_crashed(tmp_path):
    """A step killed by a signal leaves the JSON it had opened empty (seen on an H200: SIGSEGV at start-up): the
    report still lists it, as failed, with its log's tail."""
    (tmp_path / "env.json").write_text("")
    (tmp_path / "segmentation.json").write_text("")
    (tmp_path / "segmentation.log").write_text("Fatal Python error: Segmentation fault\n  File \"x.py\", line 1\n")
    rows = [("env", "fail (exit 139)", "19", str(tmp_path / "env.log")),
            ("segmentation", "fail (exit 139)", "15", str(tmp_path / "segmentation.log"))]
    (tmp_path / "steps.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    counts = write_report(str(tmp_path), str(tmp_path / "r.md"))
    assert counts == {"step fail (exit 139)": 2}
    md = (tmp_path / "r.md").read_text()
    assert "- (env step did not run)" in md and "| segmentation | fail (exit 139) | 15 |" in md
    assert "Fatal Python error: Segmentation fault" in md
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_check_quick_on_the_cpu_runs_every_step(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "tools/gpu_check.sh", "--device", "cpu", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, OUT=str(out), OMP_NUM_THREADS="1"))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:] + "".join(
        open(p).read()[-2000:] for p in map(str, out.glob("*.log")))
    steps = [line.split("\t")[:2] for line in (out / "steps.tsv").read_text().splitlines()]
    assert steps == [[s, "pass"] for s in ("env", "segmentation", "detection", "classification", "bench-mix",
                                            "bench-attention", "bench-step", "bench-throughput")] + \
        [["nccl", "skipped (0 GPU)"]]
    md = (out / "report.md").read_text()
    fmnist = sorted(p for p in os.listdir(osp.join(ROOT, "configs/classification")) if p.endswith("_fmnist.py"))
    for name in fmnist + ["segmenter-mask_deit-t_mixpro_8xb1-160k_ade20k-512x512.py",
                          "segmenter-linear_deit-t_mixpro_8xb1-160k_ade20k-512x512.py",
                          "mask-rcnn_pvt-t_mixpro_fpn_8xb2-1x_coco.py"]:
        assert re.search(rf"\| {re.escape(name)} \| pass \| [\d.]+ \|", md), name
    seg = json.loads((out / "segmentation.json").read_text())["items"]
    assert all(0 <= it["mIoU"] <= 100 and it["iters"] == 2 for it in seg)


def test_gpu_check_only_runs_the_named_steps(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "tools/gpu_check.sh", "--device", "cpu", "--quick", "--only", "env,bench-mix"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OUT=str(out), OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = dict(line.split("\t")[:2] for line in (out / "steps.tsv").read_text().splitlines())
    assert steps == {"env": "pass", "segmentation": "not run (--only)", "detection": "not run (--only)",
                     "classification": "not run (--only)", "bench-mix": "pass", "bench-attention": "not run (--only)",
                     "bench-step": "not run (--only)", "bench-throughput": "not run (--only)",
                     "nccl": "skipped (0 GPU)"}
    assert "| segmentation | not run (--only) |" in (out / "report.md").read_text()


def test_gpu_check_trains_a_config_whose_method_reads_label_maps():
    """TokenMix reads the teacher's label maps from the batch: the check's synthetic step gives it maps of the released
    shape whose top class is the label (without them the method refuses the batch)."""
    import classification.register_all  # noqa: F401  (registration)
    from classification.benchmarks.common import step_targets
    from classification.benchmarks.gpu_check import classification_item
    from mixpro_core.tokenmix import LABEL_MAP_EXTRAS

    config = osp.join(ROOT, "configs/classification/deit-t_tokenmix_8xb128-300e_in1k.py")
    item = classification_item(config, "cpu", None, steps=1, batch=2)
    assert item["batch"] == 2 and item["size"] == "3x224x224" and item["loss"] > 0

    class Classifier:  # what step_targets reads of a model: its method's EXTRAS
        method = type("Method", (), {"EXTRAS": LABEL_MAP_EXTRAS})()

    labels = torch.tensor([3, 997])
    targets = step_targets(Classifier(), labels, 1000)
    assert set(targets) == {"labels", *LABEL_MAP_EXTRAS} and targets["labels"] is labels
    assert targets["label_indices"].shape == (2, 5, 14, 14) and targets["label_scores"].shape == (2, 5, 14, 14)
    assert (targets["label_indices"][:, 0] == labels.view(2, 1, 1)).all() and targets["label_indices"].max() < 1000
    torch.testing.assert_close(targets["label_scores"].sum(1), torch.ones(2, 14, 14))
    assert targets["crop_box"].tolist() == [[0.0, 0.0, 1.0, 1.0]] * 2

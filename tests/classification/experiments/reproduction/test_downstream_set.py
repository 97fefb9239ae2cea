"""``tools/reproduce.py --set downstream``: the plan, resuming, repeatability, the metrics it reads and its report."""
import json
import os
import os.path as osp

import pytest
import torch

from classification.experiments.reproduction import cli, downstream, runs
from classification.experiments.reproduction.downstream_report import markdown
from classification.experiments.reproduction.paper_tables import read_metric

FMNIST = "/usr/share/datasets/fashion-mnist"


def _meta(**extra):
    return dict(platform="Linux", cpu="cpu", cpu_count=2, python="3", torch="t", mmengine="m", command="c",
                epochs=6, floor=7.5, wall_seconds=1.0, ran=0, jobs=2, sum_run_seconds=3.0, threads="1",
                work_root="/w", pretrain_root="/p", finished="now", **extra)


def test_report_pairs_seeds_against_the_baseline_and_sets_the_paper_beside():
    values = {"random": [8.0, 9.0, 7.0], "baseline": [10.0, 11.0, 12.0], "transmix": [10.0, 11.0, 12.0],
              "mixpro": [11.0, 13.0, 12.0]}
    rows = [dict(head="linear", init=init, seed=seed, mIoU=v, **{"mIoU +MS": v + 1})
            for init, vs in values.items() for seed, v in enumerate(vs)]
    collected = dict(runs=rows, pretrain={"baseline": {0: 80.0, 1: 81.0, 2: 82.0}})
    text = markdown(collected, downstream.INITS, ["linear"], [0, 1, 2], _meta(), None)
    # Paired by seed, t(0.975, 2) = 4.3027: MixPro − baseline 1, 2, 0 → mean 1, std 1, 95% interval 1 ± 4.3027/√3 =
    # [−1.48, 3.48], t = √3, two-sided p = 0.225; random − baseline −2, −2, −5 → mean −3, std √3, interval −3 ± 4.3027
    # = [−7.30, 1.30], t = −3, p = 0.095; TransMix − baseline 0 everywhere (an interval of zero width, no t-test).
    # Holm over the 4 tests (+MS has the same differences): 4·0.0955 = 0.382 for both random rows, max(0.382,
    # 2·0.2254) = 0.451 for both MixPro rows. Paper (Table 2, linear 49.1 / 49.7 / 50.3): MixPro − baseline +1.2, a
    # difference of 1.2 std of the differences: 8 seeds for 80% power (noncentral t; G*Power gives the same).
    lines = text.splitlines()
    assert "| Segmenter linear | mIoU | random init | -2.00, -2.00, -5.00 | -3.00 [-7.30, +1.30] | 0.095 | 0.382 | " \
           "— | — |" in lines
    assert "| Segmenter linear | mIoU | TransMix | +0.00, +0.00, +0.00 | +0.00 [+0.00, +0.00] | — | — | +0.6 | — |" \
           in lines
    assert "| Segmenter linear | mIoU +MS | MixPro | +1.00, +2.00, +0.00 | +1.00 [-1.48, +3.48] | 0.225 | 0.451 | " \
           "+1.3 | 7 |" in lines
    assert "| Segmenter linear | mIoU | MixPro | +1.00, +2.00, +0.00 | +1.00 [-1.48, +3.48] | 0.225 | 0.451 | " \
           "+1.2 | 8 |" in lines
    assert "Holm over the 4 tests of this table" in text and "direction" not in text.lower()
    assert "| baseline | 81.00 ± 1.00 | 11.00 ± 1.00 | 12.00 ± 1.00 | 3 |" in text
    assert "| floor: all background | — | 7.50 | 7.50 | — |" in text
    assert "| paper: MixPro | — | 50.3 | 50.9 | — |" in text
    assert "| MixPro | 1 | 13.00 | 14.00 |" in text  # per seed


def test_every_pretrained_backbone_has_its_tiny_vit_config_and_the_vit_methods_are_there():
    pretrained = [init for init in downstream.INITS if init != "random"]
    assert [m for m in pretrained if not osp.isfile(runs.config_path(m))] == []
    assert {"tlalign", "smmix", "tokenmix-area", "mergemix"} <= set(pretrained)
    assert sorted(label for label, _ in runs.EXPERIMENT_SETS["vit-methods"].runs) == sorted(pretrained)


def test_options_of_other_sets_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--set", "downstream", "--keep-going"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--set", "pal-ablation", "--quick"])
    assert "belong to --set downstream" in capsys.readouterr().err


def test_data_is_generated_once_per_parameter_set(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(downstream, "make_composite", lambda root, **p: calls.append(p) or os.makedirs(root, exist_ok=True))
    downstream.ensure_data(str(tmp_path / "d"), quick=True)
    downstream.ensure_data(str(tmp_path / "d"), quick=True)
    assert calls == [dict(downstream.DATA, num_train=8, num_val=4)]
    downstream.ensure_data(str(tmp_path / "d"), quick=False)
    assert calls[-1] == downstream.DATA and len(calls) == 2


@pytest.mark.slow
@pytest.mark.skipif(not osp.isdir(FMNIST), reason="needs Fashion-MNIST (make setup)")
def test_quick_set_runs_resumes_and_repeats_a_fine_tune_exactly(tmp_path, capsys):
    work = str(tmp_path / "w")
    common = ["--set", "downstream", "--quick", "--seeds", "0", "--jobs", "2", "--work-root", work, "--out",
              str(tmp_path / "report.md")]
    args = [*common, "--methods", "random,mixpro", "--heads", "linear,mask-rcnn"]
    lines = cli.main(args)
    assert set(lines) == {"linear", "mask-rcnn"}
    pre = json.load(open(osp.join(work, "pretrain", "mixpro", "seed0", "result.json")))
    assert pre["epochs"] == 1 and pre["seed"] == 0
    for stem in ("linear_random_seed0", "linear_mixpro_seed0", "linear_mixpro_seed0_ms"):
        value, path = read_metric(work, stem, "mIoU")
        assert value is not None and 0 <= value <= 100, path
    assert read_metric(work, "mask-rcnn_mixpro_seed0", "coco/bbox_mAP", 100.0)[0] is not None
    result = json.load(open(osp.join(work, "finetune", "linear_mixpro_seed0", "result.json")))
    assert result["pretrained"].endswith(osp.join("mixpro", "seed0", "epoch_1.pth")) and result["seed"] == 0
    text = open(tmp_path / "report.md").read()
    assert "| MixPro | " in text and "floor: all background" in text and osp.isfile(tmp_path / "report.png")
    assert "from the first run's start to the last run's end" in text

    capsys.readouterr()
    cli.main(args)  # everything there: nothing runs again
    assert "0 runs to go" in capsys.readouterr().out
    first = read_metric(work, "linear_random_seed0", "mIoU")[0]
    cli.main([*common, "--methods", "random", "--heads", "linear", "--force"])
    assert read_metric(work, "linear_random_seed0", "mIoU")[0] == first
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' count, so that the run in this process (--jobs 1) repeats theirs
    try:  # --jobs 1: the fine-tune runs in this process, which must read its own checkpoints weights-only too
        cli.main([*common[:5], "--jobs", "1", *common[7:], "--methods", "random", "--heads", "linear", "--force"])
    finally:
        torch.set_num_threads(threads)
    assert read_metric(work, "linear_random_seed0", "mIoU")[0] == first

"""classification.experiments.reproduction (tools/reproduce.py): method discovery, budget → epochs and schedule,
aggregation, the ranking sentence, the report, skip-if-done / --force / failures / --jobs (training monkeypatched), the
plumbing of one run (Runner and robustness faked), and one slow end-to-end run on a tiny subset."""
import json
import os
import os.path as osp
import sys
import time

import pytest

from classification.engine import launch, lifecycle
from classification.foundation.errors import UserError, run_tool
from classification.experiments.reproduction import cli, estimates, runs, stats as S

from classification.foundation.host import ROOT
FMNIST = "/usr/share/datasets/fashion-mnist"


def fake_config_dir(tmp_path, methods=("mixpro", "none", "zmix", "cutout", "baseline", "transmix", "maskmix")):
    d = tmp_path / "configs"
    (d / "_base_" / "methods").mkdir(parents=True)
    for m in methods:
        (d / f"tiny-vit_{m}_1xb128-20e_fmnist.py").write_text("_base_ = []\n")
    (d / "deit-s_mixpro_8xb128-300e_in1k.py").write_text("")  # other model / schedule: not a method
    (d / "tiny-vit_mixpro_1xb64-20e_fmnist.py").write_text("")
    (d / "_base_" / "methods" / "cutout.py").write_text(
        "# Cutout (2017): one square of\n# each image zeroed. Labels unchanged.\nmethod = dict()\n# other\n")
    return str(d)


# ------------------------------------------------------------------------------------------- methods, budget
def test_discovery_puts_the_paper_methods_first_then_the_others_by_name(tmp_path):
    d = fake_config_dir(tmp_path)
    assert runs.discover_methods(d) == ["none", "baseline", "transmix", "maskmix", "mixpro", "cutout", "zmix"]
    assert runs.discover_methods(fake_config_dir(tmp_path / "b", ("zmix", "mixpro"))) == ["mixpro", "zmix"]
    assert runs.resolve_methods("mixpro, none", d) == ["mixpro", "none"]
    assert runs.resolve_methods(None, d) == ["none", "baseline", "transmix", "maskmix", "mixpro"]  # defaults present
    assert runs.resolve_methods("all", d) == runs.discover_methods(d)
    with pytest.raises(UserError, match="no config for method"):
        runs.resolve_methods("mixpro,cutmix", d)
    assert runs.describe("cutout", d) == "Cutout (2017): one square of each image zeroed."  # first sentence
    assert runs.describe("zmix", d) == ""
    assert "Progressive Attention Labeling" in runs.describe("mixpro", d)


def test_the_real_configs_are_discovered_in_order():
    methods = runs.discover_methods()
    assert runs.default_methods() == ["none", "baseline", "transmix", "maskmix", "mixpro", "htm", "vtm", "rmix"]
    assert methods[:8] == runs.default_methods() and "rlmix" in methods[8:]
    assert all(osp.isfile(runs.config_path(m)) for m in methods)


def test_budget_to_epochs():
    assert runs.epochs_for_budget(1.0) == 20
    assert runs.epochs_for_budget(0.5) == 10
    assert runs.epochs_for_budget(0.01) == 1  # never 0
    assert runs.epochs_for_budget(0.025) == 1 and runs.epochs_for_budget(0.075) == 2  # halves round up
    assert runs.epochs_for_budget(0.125) == 3
    for bad in (0, -1):
        with pytest.raises(ValueError):
            runs.epochs_for_budget(bad)


def test_time_estimates_come_from_measured_runs_only():
    assert estimates.estimate_run_seconds([], "mixpro", 10) is None
    assert estimates.estimate_plan_seconds([], [("mixpro", 0)], 10) is None
    measured = [dict(method="mixpro", epochs=2, train_seconds=30.0, run_seconds=40.0),  # 15 s/epoch + 10 s
                dict(method="mixpro", epochs=4, train_seconds=68.0, run_seconds=80.0),  # 17 s/epoch + 12 s
                dict(method="rmix", epochs=1, train_seconds=25.0, run_seconds=30.0),  # 25 s/epoch + 5 s
                dict(method="none", epochs=1, top1=1.0)]  # an older result.json without times: ignored
    assert estimates.estimate_run_seconds(measured, "mixpro", 10) == pytest.approx(10 * 16 + 11)
    assert estimates.estimate_run_seconds(measured, "rmix", 10) == pytest.approx(10 * 25 + 5)
    # a method not timed yet: the mean over every timed run
    assert estimates.estimate_run_seconds(measured, "newmix", 3) == pytest.approx(3 * 19 + 9)
    assert estimates.estimate_plan_seconds(measured, [("mixpro", 0), ("rmix", 1)], 10) == pytest.approx(171 + 255)
    # two at a time: each run starts on the first free slot; a running run counts with what is left of it
    assert estimates.estimate_plan_seconds(measured, [("rmix", 0), ("mixpro", 0), ("mixpro", 1)], 10, jobs=2) \
        == pytest.approx(max(255, 171 + 171))
    assert estimates.estimate_plan_seconds(measured, [("mixpro", 0)], 10, jobs=2, running=[("rmix", 200.0)]) \
        == pytest.approx(171)  # 55 s left of R-Mix on the other slot
    assert estimates.estimate_plan_seconds(measured, [("mixpro", 0), ("mixpro", 1)], 10, jobs=2,
                                           running=[("rmix", 200.0), ("mixpro", 300.0)]) == pytest.approx(55 + 171)
    assert estimates.estimate_plan_seconds(measured, [], 10, jobs=2, running=[("rmix", 300.0)]) == 0
    assert estimates.hms(None) == "unknown" and estimates.hms(3723) == "1h02m03s" and estimates.hms(245) == "4m05s"


def test_schedule_is_shortened_with_the_warmup_kept():
    from mmengine.config import ConfigDict
    sched = [dict(type="LinearLR", start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
             dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=True, begin=1, end=20, T_max=19,
                  convert_to_iter_based=True)]
    cfg = ConfigDict(param_scheduler=sched, train_cfg=dict(by_epoch=True, max_epochs=20, val_interval=5))
    launch.shorten_schedule(cfg, 10)
    assert cfg.train_cfg.max_epochs == 10 and cfg.train_cfg.val_interval == 10
    assert cfg.param_scheduler[0]["end"] == 1
    cosine = cfg.param_scheduler[1]
    assert (cosine["begin"], cosine["end"], cosine.get("T_max")) == (1, 10, None)  # T_max follows: end − begin
    one = ConfigDict(param_scheduler=sched, train_cfg=dict(by_epoch=True, max_epochs=20, val_interval=5))
    launch.shorten_schedule(one, 1)
    assert [s["type"] for s in one.param_scheduler] == ["LinearLR"]  # nothing left for the cosine


# ------------------------------------------------------------------------------------------- aggregation
def test_mean_and_sample_std():
    mean, std = S.mean_std([88.0, 89.0, 90.0])
    assert mean == pytest.approx(89.0) and std == pytest.approx(1.0)  # ddof=1 (ddof=0 would be 0.816)
    assert S.format_mean_std([88.0, 89.0, 90.0]) == "89.00 ± 1.00"
    assert S.mean_std([87.5]) == (87.5, None)
    assert S.format_mean_std([87.5]) == "87.50 (n=1)"
    assert S.format_mean_std([]) == "—"
    results = [dict(method="mixpro", seed=s, top1=t, top1_drop50=d)
               for s, t, d in ((2, 90.0, 60.0), (0, 88.0, 50.0), (1, 89.0, 55.0))]
    results.append(dict(method="none", seed=0, top1=80.0, top1_drop50=40.0))
    stats = S.aggregate(results, ["none", "mixpro", "transmix"])
    assert list(stats) == ["none", "mixpro", "transmix"]
    assert stats["mixpro"]["seeds"] == [0, 1, 2] and stats["mixpro"]["top1"] == [88.0, 89.0, 90.0]
    assert stats["mixpro"]["drop_std"] == pytest.approx(5.0)
    assert stats["none"]["n"] == 1 and stats["none"]["top1_std"] is None
    assert stats["transmix"]["n"] == 0


def _stats(**means):
    """method → (top1 values) with the same spread for every method."""
    results = [dict(method=m, seed=s, top1=v + d, top1_drop50=v - 30 + d)
               for m, v in means.items() for s, d in enumerate((-0.1, 0.0, 0.1))]
    return S.aggregate(results, list(means))


def _per_seed(**values):
    """method → top-1 of seeds 0, 1, 2 (top-1 under drop: 30 less)."""
    results = [dict(method=m, seed=s, top1=v, top1_drop50=v - 30) for m, vs in values.items() for s, v in enumerate(vs)]
    return S.aggregate(results, list(values))


def test_ranking_sentence_when_it_holds():
    from scipy import stats as scipy_stats
    stats = _per_seed(baseline=[88.0, 88.0, 88.0], transmix=[88.4, 88.5, 88.6], mixpro=[89.4, 89.0, 89.2])
    text = S.ranking_sentence(stats, paper_gaps={("mixpro", "transmix"): 0.7})
    assert "holds at this scale" in text and "does not" not in text and "over 3 seeds" in text
    assert "MixPro 89.20 ± 0.20 > TransMix 88.50 ± 0.10 > baseline 88.00 ± 0.00" in text
    # per seed: TransMix − baseline 0.4, 0.5, 0.6 (mean 0.5, std 0.1); MixPro − TransMix 1.0, 0.5, 0.6 (mean 0.7,
    # std 0.265); 95% interval mean ± t(0.975, 2)·std/√3 with t = 4.3027: [0.25, 0.75] and [0.04, 1.36]
    p_tb = scipy_stats.ttest_rel([88.4, 88.5, 88.6], [88.0] * 3).pvalue  # 0.013
    p_mt = scipy_stats.ttest_rel([89.4, 89.0, 89.2], [88.4, 88.5, 88.6]).pvalue  # 0.045
    holm_tb, holm_mt = 2 * p_tb, max(2 * p_tb, p_mt)  # Holm over the two gaps: the smaller p doubled, then max
    assert f"MixPro − TransMix +0.70 [+0.04, +1.36] (Holm-adjusted p {holm_mt:.3f}, resolved)" in text
    assert f"TransMix − baseline +0.50 [+0.25, +0.75] (Holm-adjusted p {holm_tb:.3f}, resolved)" in text
    # the paper's +0.7 with std 0.265 (2.6 std): power 0.66 with 3 seeds, 0.93 with 4 (a simulation of 200k paired
    # t-tests gives the same); no paper gap given for the other
    assert "a gap of the paper's size (+0.7) with this spread needs 4 seeds for 80% power" in text
    assert text.count("seeds for 80% power") == 1


def test_ranking_sentence_when_it_does_not_hold():
    text = S.ranking_sentence(_stats(baseline=88.0, transmix=89.0, mixpro=88.5))
    assert "does not hold at this scale" in text
    assert text.index("TransMix 89.00") < text.index("MixPro 88.50") < text.index("baseline 88.00")
    # the same spread in every method: every per-seed difference is the same, nothing to test
    assert text.count("the same difference on every seed, no t-test") == 2


def test_ranking_sentence_flags_gaps_the_seeds_do_not_resolve_and_missing_methods():
    stats = _per_seed(baseline=[88.0, 88.3, 87.7], transmix=[88.2, 88.0, 88.0], mixpro=[89.0, 89.1, 88.9])
    text = S.ranking_sentence(stats)
    assert "holds" in text and "TransMix − baseline +0.07 [" in text and "not resolved" in text
    assert "cannot be checked" in S.ranking_sentence(_stats(baseline=88.0, mixpro=89.0))
    single = S.aggregate([dict(method=m, seed=0, top1=v, top1_drop50=v) for m, v in
                          (("baseline", 1.0), ("transmix", 2.0), ("mixpro", 3.0))], list(S.PAPER_RANKING))
    assert "fewer than two paired seeds" in S.ranking_sentence(single)
    assert "top-1 under 50% patch drop" in S.ranking_sentence(_stats(baseline=1, transmix=2, mixpro=3), "drop")


# ------------------------------------------------------------------------------------------- the loop
@pytest.fixture
def fake_runs(monkeypatch, tmp_path):
    """Training replaced by a fake that writes result.json like the real worker; environment faked (no torch)."""
    calls = []

    def fake_launch(method, config, seed, epochs, work_dir, cfg_options=(), threads=None, occlusion_patches=(),
                    shuffle_grids=()):
        calls.append((method, seed, epochs, tuple(cfg_options)))
        top1 = {"none": 85.0, "baseline": 87.0, "transmix": 87.5, "mixpro": 88.0}.get(method, 86.0) + seed / 10
        result = dict(method=method, seed=seed, epochs=epochs, top1=top1, top1_drop50=top1 - 30,
                      train_seconds=1.0, run_seconds=2.0, step_ms=50.0 + 10 * (method == "mergemix") + seed,
                      threads=threads or 2)
        if occlusion_patches:  # drop on a p-px grid: top-1 − 30 − p/4 − 2·seed² (seed-dependent differences)
            result["top1_drop50_by_patch"] = {str(p): top1 - 30 - p / 4 - 2 * seed ** 2 * (method != "mixpro")
                                              for p in occlusion_patches}
        if shuffle_grids:  # g×g shuffle: top-1 − 40 − g − seed
            result["top1_shuffle"] = {f"{g}x{g}": top1 - 40 - g - seed for g in shuffle_grids}
        os.makedirs(work_dir, exist_ok=True)
        with open(osp.join(work_dir, runs.RESULT_FILE), "w") as f:
            json.dump(result, f)
        return result

    monkeypatch.setattr(runs, "launch_run", fake_launch)
    monkeypatch.setattr(cli, "environment", lambda: dict(platform="TestOS", cpu="TestCPU", cpu_count=2, python="3",
                                                       torch="9.9", timm="1", mmengine="0", gpu=None))
    work, out = tmp_path / "work", tmp_path / "docs" / "results.md"
    base = ["--config-dir", fake_config_dir(tmp_path), "--work-root", str(work), "--out", str(out)]
    return calls, base, work, out


def test_runs_are_skipped_when_their_result_exists(fake_runs, capsys):
    calls, base, work, out = fake_runs
    args = base + ["--methods", "baseline,transmix,mixpro", "--seeds", "0,1", "--budget", "0.1", "--jobs", "1"]
    cli.main(args)
    progress = capsys.readouterr().out
    assert "[1/6] start baseline seed 0 (2 epochs)" in progress and "[6/6] done  mixpro seed 1: top-1" in progress
    assert progress.count("ETA") == 12 and "6 to train; estimate unknown" in progress
    assert "[1/6] start baseline seed 0 (2 epochs) in" in progress and "ETA unknown" in progress.splitlines()[1]
    assert "ETA 0m" in progress.splitlines()[2]  # the fake runs took 2 s each (their result.json says)
    assert [(m, s, e) for m, s, e, _ in calls] == [(m, s, 2) for m in ("baseline", "transmix", "mixpro")
                                                   for s in (0, 1)]
    calls.clear()
    cli.main(args)  # everything done: nothing trains again
    assert calls == [] and "6 done already, 0 to train" in capsys.readouterr().out
    os.remove(work / "transmix" / "seed1" / "result.json")
    (work / "mixpro" / "seed0" / "result.json").write_text('{"method": "mixpro", "seed": 0')  # killed mid-write
    cli.main(args)
    assert [(m, s) for m, s, _, _ in calls] == [("transmix", 1), ("mixpro", 0)]
    calls.clear()
    cli.main(args + ["--budget", "0.2"])  # other budget → other epochs: the old results do not count
    assert len(calls) == 6 and {e for _, _, e, _ in calls} == {4}
    calls.clear()
    cli.main(args + ["--budget", "0.2", "--force"])
    assert len(calls) == 6


def test_report_table_ranking_plot_and_run_details(fake_runs):
    calls, base, work, out = fake_runs
    stats = cli.main(base + ["--methods", "all", "--seeds", "0,1,2", "--budget", "0.05", "--cfg-options",
                           "train_dataloader.dataset.limit=8"])
    assert all(c[3] == ("train_dataloader.dataset.limit=8",) for c in calls)
    assert list(stats) == ["none", "baseline", "transmix", "maskmix", "mixpro", "cutout", "zmix"]
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [r.split(" | ")[0][2:] for r in rows] == list(stats)
    mixpro = next(r for r in rows if r.startswith("| mixpro |"))
    assert "88.10 ± 0.10" in mixpro and "58.10 ± 0.10" in mixpro and "s2: 88.20 / 58.20" in mixpro
    assert mixpro.endswith("| 3 |")
    assert "| cutout | Cutout (2017): one square of each image zeroed. |" in text
    assert "ranking MixPro > TransMix > baseline holds" in text
    for fact in ("python tools/reproduce.py", "--budget 0.05", "1 epoch;", "seeds 0, 1, 2", "TestOS", "2 CPUs",
                 "torch 9.9", "wall time of this invocation", "21 runs trained"):
        assert fact in text, fact
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](results.png)" in text
    assert "config overrides in every run (the data sizes above may not apply): " \
           "`train_dataloader.dataset.limit=8`" in text


def test_a_failed_run_stops_or_is_reported_with_keep_going(fake_runs, monkeypatch, capsys):
    calls, base, work, out = fake_runs
    ok = runs.launch_run

    def failing(method, config, seed, epochs, work_dir, cfg_options=(), threads=None, occlusion_patches=(),
                shuffle_grids=()):
        if method == "transmix" and seed == 1:
            raise runs.RunFailed(method, seed, osp.join(work_dir, "reproduce.log"), "exit code 1")
        return ok(method, config, seed, epochs, work_dir, cfg_options, threads)

    monkeypatch.setattr(runs, "launch_run", failing)
    args = base + ["--methods", "baseline,transmix,mixpro", "--seeds", "0,1", "--jobs", "1"]
    with pytest.raises(SystemExit, match="transmix seed 1"):
        cli.main(args)
    err = capsys.readouterr().err
    assert "FAILED transmix seed 1" in err and osp.join("transmix", "seed1", "reproduce.log") in err
    assert not out.exists() and len(calls) == 3  # stopped at the failure
    cli.main(args + ["--keep-going"])
    text = out.read_text()
    assert "**Failed runs**" in text and "transmix seed 1" in text
    assert next(r for r in text.splitlines() if r.startswith("| transmix |")).endswith("| 1 |")


def _timed_launch(monkeypatch, spans, seconds):
    """Wrap the fake launch: each run takes ``seconds[(method, seed)]`` (default 0.3 s), failing when negative;
    ``spans`` gets (method, seed, start, end)."""
    ok = runs.launch_run

    def launch(method, config, seed, epochs, work_dir, cfg_options=(), threads=None, occlusion_patches=(),
               shuffle_grids=()):
        start = time.monotonic()
        wait = seconds.get((method, seed), 0.3)
        time.sleep(abs(wait))
        if wait < 0:
            raise runs.RunFailed(method, seed, osp.join(work_dir, "reproduce.log"), "exit code 1")
        result = ok(method, config, seed, epochs, work_dir, cfg_options, threads)
        spans.append((method, seed, start, time.monotonic()))
        return result

    monkeypatch.setattr(runs, "launch_run", launch)


def _most_at_once(spans) -> int:
    return max(sum(1 for _, _, a, b in spans if a <= start < b) for _, _, start, _ in spans)


def test_two_jobs_run_side_by_side_and_give_the_results_and_report_of_one_job(fake_runs, monkeypatch, tmp_path,
                                                                             capsys):
    from classification.foundation.host import usable_cores
    calls, base, work, out = fake_runs
    spans = []
    _timed_launch(monkeypatch, spans, {})
    args = base + ["--methods", "baseline,transmix,mixpro", "--seeds", "0,1"]
    cli.main(args + ["--jobs", "1"])
    one = capsys.readouterr().out
    assert _most_at_once(spans) == 1
    sequential_calls = list(calls)
    calls.clear()
    spans.clear()
    work2, out2 = tmp_path / "work2", tmp_path / "docs2" / "results.md"
    cli.main(args + ["--jobs", "2", "--work-root", str(work2), "--out", str(out2)])
    two = capsys.readouterr().out
    assert _most_at_once(spans) == 2  # runs overlapped, never more than two
    assert sorted(calls) == sorted(sequential_calls) and len(calls) == 6
    threads = max(1, usable_cores() // 2)
    assert f"6 to train, 2 at a time ({threads} thread" in two and "2 at a time" not in one
    assert two.count(" done  ") == one.count(" done  ") == 6 and two.count("ETA") == one.count("ETA") == 12
    for m in ("baseline", "transmix", "mixpro"):
        for s in (0, 1):
            first = json.loads((work / m / f"seed{s}" / "result.json").read_text())
            second = json.loads((work2 / m / f"seed{s}" / "result.json").read_text())
            assert first == dict(second, threads=2) and second["threads"] == threads  # each child's thread count
    report_one, report_two = out.read_text(), out2.read_text()

    def results_part(text):  # the report without its timestamp and its "Run" section
        return [line for line in text.split("## Run")[0].splitlines() if not line.startswith("Written by")]

    assert results_part(report_one) == results_part(report_two)
    assert "runs at a time (`--jobs`): 1, each in its own process; intra-op threads per run: 2 " in report_one
    assert f"runs at a time (`--jobs`): 2, each in its own process; intra-op threads per run: {threads} " \
           in report_two


def test_with_two_jobs_a_failure_stops_new_runs_or_is_reported_with_keep_going(fake_runs, monkeypatch, capsys):
    calls, base, work, out = fake_runs
    spans = []
    # baseline seed 0 runs for 1 s; beside it, baseline seed 1 fails after 0.05 s
    _timed_launch(monkeypatch, spans, {("baseline", 0): 1.0, ("baseline", 1): -0.05})
    args = base + ["--methods", "baseline,transmix,mixpro", "--seeds", "0,1", "--jobs", "2"]
    with pytest.raises(SystemExit, match=r"failure of baseline seed 1 \(log: .*baseline/seed1/reproduce.log\)"):
        cli.main(args)
    captured = capsys.readouterr()
    assert "FAILED baseline seed 1" in captured.err and osp.join("baseline", "seed1", "reproduce.log") in captured.err
    assert "waiting for the 1 running run to finish" in captured.err
    assert [(m, s) for m, s, _, _ in calls] == [("baseline", 0)]  # nothing launched after the failure
    assert runs.load_result(str(work / "baseline" / "seed0")) is not None  # the running one finished
    assert "[1/6] done  baseline seed 0" in captured.out and not out.exists()
    calls.clear()
    cli.main(args + ["--keep-going"])
    assert sorted((m, s) for m, s, _, _ in calls) == [(m, s) for m in ("mixpro", "transmix") for s in (0, 1)]
    text = out.read_text()
    assert "**Failed runs**" in text and "baseline seed 1 (log `" in text
    assert next(r for r in text.splitlines() if r.startswith("| baseline |")).endswith("| 1 |")
    assert next(r for r in text.splitlines() if r.startswith("| mixpro |")).endswith("| 2 |")


def test_experiment_set_report_paired_statistics_curves_and_results_md(fake_runs):
    """--set pal-ablation: its five labels × seeds with the 4/8/16-px grids, per-seed values, paired differences
    against MixPro (scipy's paired t-test), the label-policy statistics from each run's curve.json, and
    docs/results.md ending with the set report and the findings (once, however often it is refreshed)."""
    from scipy import stats as scipy_stats
    calls, base, work, out = fake_runs
    docs = out.parent
    docs.mkdir(parents=True)
    out.write_text("# the default report\n")
    (docs / "results-findings.md").write_text("## Findings\n\nwritten by hand\n")
    for seed in (0, 1, 2):  # what TrainingCurveHook leaves in a run dir
        run = work / "mixpro" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "curve.json").write_text(json.dumps({
            "loss": [[1, 2.0]], "pal_alpha": [[i, 0.5 + seed / 10] for i in range(1, 21)],
            "lam_gap": [[i, 0.1] for i in range(1, 21)], "attn_entropy": [[i, 1.5] for i in range(1, 21)]}))
    set_out = docs / "results-pal-ablation.md"
    args = base + ["--set", "pal-ablation", "--seeds", "0,1,2", "--out", str(set_out)]
    cli.main(args)
    labels = ["mixpro", "mixpro-smooth", "mixpro-arealam", "maskmix", "mixpro-detach", "transmix"]
    assert [(m, s) for m, s, _, _ in calls] == [(m, s) for m in labels for s in (0, 1, 2)]
    text = set_out.read_text()
    assert "| run | what | top-1 | @50% drop, token grid | @50% drop, 4-px grid | @50% drop, 8-px grid | " \
           "@50% drop, 16-px grid | n |" in text
    assert "| maskmix | area λ, smoothed soft-target CE (MaskMix) |" in text
    # fake drop on the 4-px grid: top-1 − 31 − 2·seed² for the others, top-1 − 31 for MixPro
    diffs = [-2.0 - 2 * s ** 2 for s in (0, 1, 2)]
    t = scipy_stats.ttest_rel([88 + s / 10 - 31 + d for s, d in zip((0, 1, 2), diffs)],
                              [88 + s / 10 - 31 for s in (0, 1, 2)])
    row = next(line for line in text.splitlines() if line.startswith("| mixpro-smooth | @50% drop, 4-px grid |"))
    assert "-2.00, -4.00, -10.00" in row and f"{t.statistic:+.2f} (2)" in row and f"{t.pvalue:.3f}" in row
    top1_row = next(line for line in text.splitlines() if line.startswith("| mixpro-smooth | top-1 |"))
    assert "-2.00, -2.00, -2.00" in top1_row and top1_row.endswith("| — | — |")  # no spread: no t-test
    assert "| mixpro | 0.600 | 0.100 | 1.500 |" in text  # α averaged over the last 10% of points, then seeds
    for png in ("results-pal-ablation.png", "results-pal-ablation-curves.png"):
        assert (docs / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cli.main(args)  # again: nothing trains, results.md is rewritten, not appended to
    merged = out.read_text()
    assert merged.startswith("# the default report\n") and merged.count("## PAL ablation") == 1
    assert merged.index("## PAL ablation") < merged.index("written by hand")
    with pytest.raises(UserError, match="choose distinct labels"):
        cli.main(base + ["--set", "tokens64", "--methods", "mixpro-smooth"])


def test_vit_methods_set_reports_patch_shuffle_and_step_time_against_the_baseline(fake_runs):
    calls, base, work, out = fake_runs
    set_out = out.parent / "results-vit-methods.md"
    cli.main(base + ["--set", "vit-methods", "--seeds", "0,1", "--out", str(set_out)])
    labels = ["baseline", "mixpro", "transmix", "tlalign", "smmix", "tokenmix-area", "mergemix"]
    assert [(m, s) for m, s, _, _ in calls] == [(m, s) for m in labels for s in (0, 1)]
    assert all(runs.load_result(str(work / m / f"seed{s}"), 6, (), (4,)) for m in labels for s in (0, 1))
    text = set_out.read_text()
    assert "| run | what | top-1 | @50% drop, token grid | shuffled 4×4 | ms / step | n |" in text
    assert "| baseline | Mixup 0.8 / CutMix 1.0 (switch 0.5), area labels | 87.05 ± 0.07 | 57.05 ± 0.07 | " \
           "42.55 ± 0.64 | 50.50 ± 0.71 | 2 |" in text
    step = next(line for line in text.splitlines() if line.startswith("| mergemix | ms / step |"))
    assert "+10.00, +10.00" in step
    shuffle = next(line for line in text.splitlines() if line.startswith("| mergemix | shuffled 4×4 |"))
    assert "-1.00, -1.00" in shuffle
    assert "(14 runs trained, 0 reused)" in text and "2 at a time" in text
    cli.main(base + ["--set", "vit-methods", "--seeds", "0,1", "--out", str(set_out), "--report-only", "--jobs", "2"])
    run_line = next(line for line in set_out.read_text().splitlines() if line.startswith("Run: "))
    assert "report of 14 finished runs" in run_line and "at a time" not in run_line and "wall time" not in run_line


def test_report_only_and_option_checks(fake_runs, capsys, monkeypatch):
    calls, base, work, out = fake_runs
    cli.main(base + ["--methods", "mixpro", "--seeds", "0", "--report-only"])
    assert calls == [] and "no result for: mixpro seed 0" in capsys.readouterr().out
    for bad in (["--cfg-options", "model.mix_seed=3"], ["--budget", "0"], ["--seeds", "0,0"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as info:  # as tools/reproduce.py runs it
            run_tool(lambda: cli.main(base + bad))
        assert info.value.code == 2
    # default budget: 6 epochs for the default run, 10 for the experiment sets (their reports), --budget wins
    assert runs.epochs_for_budget(cli.parse_args([]).budget) == 6
    assert runs.epochs_for_budget(cli.parse_args(["--set", "pal-ablation"]).budget) == 10
    assert cli.parse_args(["--set", "tokens64", "--budget", "0.15"]).budget == 0.15
    # by default one run per usable core (one intra-op thread each), whatever the core count
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert cli.parse_args([]).jobs == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert cli.parse_args([]).jobs == 1


# ------------------------------------------------------------------------------------------- one run
def test_one_run_sets_seeds_epochs_and_asks_robustness_for_50_percent_drop(monkeypatch, tmp_path):
    """train_and_evaluate with the Runner and evaluate_robustness faked: what reaches them, what is written."""
    seen = {}

    class FakeRunner:
        rank = 0

        def __init__(self, cfg):
            self.cfg, self.work_dir = cfg, cfg.work_dir

        @classmethod
        def from_cfg(cls, cfg):
            seen["cfg"] = cfg
            return cls(cfg)

        def register_hook(self, hook):
            seen.setdefault("hooks", []).append(hook)

        def train(self):
            os.makedirs(self.cfg.work_dir, exist_ok=True)
            open(osp.join(self.cfg.work_dir, f"epoch_{self.cfg.train_cfg.max_epochs}.pth"), "w").close()
            for i in range(12):  # twelve steps of 0, 2, 4, ... ms: the timer skips the first ten
                seen["hooks"][-1].before_train_iter(self, i)
                time.sleep(0.002 * i)
                seen["hooks"][-1].after_train_iter(self, i)

        def test(self):
            return {"top1": 88.5, "top5": 99.0}

    def fake_evaluate(config_path, checkpoint, suites=("occlusion",), **kw):
        seen["robustness"] = dict(config_path=config_path, checkpoint=checkpoint, suites=tuple(suites), **kw)
        seen.setdefault("patches", []).append(kw.get("occlusion_patch_size"))
        patches = kw.get("occlusion_patch_size") or []
        by_patch = {str(p): {"0.5": 60.0 + p} for p in patches} if len(patches) > 1 else {}
        if "shuffle" in suites:
            return {"checkpoint": checkpoint, "clean_top1": 88.5,
                    "shuffle": {f"{g}x{g}": 70.0 + g for g in kw["shuffle_grids"]}}
        return {"checkpoint": checkpoint, "clean_top1": 88.5, "occlusion": {"0.5": 61.25},
                **({"occlusion_by_patch": by_patch} if by_patch else {})}

    monkeypatch.setattr(lifecycle, "MixProRunner", FakeRunner)
    monkeypatch.setattr(runs, "evaluate_robustness", fake_evaluate)
    monkeypatch.setattr(runs, "configure_threads", lambda cfg: 3)  # tools/train.py's thread setting, recorded
    work = str(tmp_path / "mixpro" / "seed3")
    result = runs.train_and_evaluate("mixpro", runs.config_path("mixpro"), 3, 4, work,
                                  {"train_dataloader.dataset.limit": 16})
    cfg = seen["cfg"]
    assert cfg.randomness.seed == 3 and cfg.model.mix_seed == 3
    assert cfg.train_cfg.max_epochs == 4 and cfg.train_cfg.val_interval == 4 and cfg.work_dir == work
    assert cfg.param_scheduler[-1]["end"] == 4 and cfg.train_dataloader.dataset.limit == 16
    rob = seen["robustness"]
    assert rob["suites"] == ("occlusion",) and tuple(rob["occlusion_ratios"]) == (0.5,) and rob["seed"] == 3
    assert rob["checkpoint"] == osp.join(work, "epoch_4.pth")
    assert (result["top1"], result["top1_drop50"], result["epochs"], result["seed"]) == (88.5, 61.25, 4, 3)
    assert result["threads"] == 3
    assert runs.load_result(work, 4) == result and runs.load_result(work, 5) is None
    assert "top1_drop50_by_patch" not in result and runs.load_result(work, 4, (4, 8)) is None  # rerun for grids
    grids = runs.train_and_evaluate("mixpro", runs.config_path("mixpro"), 3, 4, work, None, (4, 8, 16))
    assert seen["patches"][-2:] == [None, [4, 8, 16]]  # the token grid, then the set's grids in one pass
    assert grids["top1_drop50"] == 61.25 and grids["top1_drop50_by_patch"] == {"4": 64.0, "8": 68.0, "16": 76.0}
    assert runs.load_result(work, 4, (4, 8, 16)) == grids
    assert 20.0 <= grids["step_ms"] < 40.0  # the median of the two timed steps (20 and 22 ms asked)
    shuffled = runs.train_and_evaluate("mixpro", runs.config_path("mixpro"), 3, 4, work, None, (), (4, 2))
    assert seen["robustness"]["suites"] == ("shuffle",) and seen["robustness"]["shuffle_grids"] == [4, 2]
    assert shuffled["top1_shuffle"] == {"4x4": 74.0, "2x2": 72.0}
    assert runs.load_result(work, 4, (), (4,)) == shuffled and runs.load_result(work, 4, (), (8,)) is None


# ------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_end_to_end_two_methods_two_seeds_two_at_a_time_on_a_tiny_subset(tmp_path):
    """Four real runs, two at a time: overlapping processes, the report; a run alone (--jobs 1, same thread
    count) gives the same result as beside another."""
    import subprocess
    from classification.foundation.host import usable_cores
    small = []
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        small += [f"{loader}.num_workers=0", f"{loader}.persistent_workers=False"]
    small += ["train_dataloader.dataset.limit=128", "train_dataloader.batch_size=64",
              "val_dataloader.dataset.limit=100", "test_dataloader.dataset.limit=100"]
    out = tmp_path / "results.md"
    cmd = [sys.executable, "tools/reproduce.py", "--methods", "none,mixpro", "--seeds", "0,1", "--budget", "0.05",
           "--jobs", "2", "--work-root", str(tmp_path / "work"), "--out", str(out), "--cfg-options", *small]
    threads = max(1, usable_cores() // 2)  # what --jobs 2 gives each run
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[4/4] done  mixpro seed 1" in proc.stdout and "2 at a time" in proc.stdout
    results = {}
    for m in ("none", "mixpro"):
        for s in (0, 1):
            result = runs.load_result(str(tmp_path / "work" / m / f"seed{s}"), 1)
            assert result is not None and 0 <= result["top1_drop50"] <= 100
            assert result["clean_top1_robustness"] == pytest.approx(result["top1"])  # same model, same test set
            assert result["threads"] == threads and result["started"] < result["finished"]
            results[m, s] = result
    spans = sorted((r["started"], r["finished"]) for r in results.values())
    assert spans[1][0] < spans[0][1]  # the first two run processes were alive at the same time
    text = out.read_text()
    assert "| none |" in text and "| mixpro |" in text and "cannot be checked" in text
    assert f"runs at a time (`--jobs`): 2, each in its own process; intra-op threads per run: {threads} " in text
    assert (tmp_path / "results.png").is_file()
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "4 done already, 0 to train" in again.stdout
    alone = [sys.executable, "tools/reproduce.py", "--methods", "mixpro", "--seeds", "1", "--budget", "0.05",
             "--jobs", "1", "--work-root", str(tmp_path / "alone"), "--out", str(tmp_path / "alone.md"),
             "--cfg-options", *small]
    proc = subprocess.run(alone, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = runs.load_result(str(tmp_path / "alone" / "mixpro" / "seed1"), 1)
    keys = ("top1", "top1_drop50", "top5", "clean_top1_robustness", "threads")
    assert {k: result[k] for k in keys} == {k: results["mixpro", 1][k] for k in keys}
    import torch
    from classification.foundation.checkpoints import load_checkpoint_file
    beside = load_checkpoint_file(results["mixpro", 1]["checkpoint"])["state_dict"]
    alone_weights = load_checkpoint_file(result["checkpoint"])["state_dict"]
    assert beside.keys() == alone_weights.keys()
    assert all(torch.equal(beside[k], alone_weights[k]) for k in beside)  # bit-exact

"""The reports' seed-level statistics (classification/experiments/reproduction/stats.py): paired by seed key, the
t interval against scipy and a hand computation, Holm against a hand computation, the seeds-for-power answer against
G*Power's tables and a simulation, and reports that do not depend on the order the runs arrive in."""
import random

import numpy as np
import pytest
from scipy import stats as scipy_stats

from classification.experiments.reproduction import downstream, report, runs
from classification.experiments.reproduction import stats as S
from classification.experiments.reproduction.downstream_report import markdown as downstream_markdown


def test_paired_matches_scipy_and_a_hand_computation():
    # hand: differences 1, 2, 0 → mean 1, std 1, t = 1/(1/√3) = √3; t(0.975, 2) = 4.302653 → 1 ± 2.484138
    c = S.paired({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 4.0, 2: 3.0})
    assert c["seeds"] == [0, 1, 2] and c["diffs"] == [1.0, 2.0, 0.0] and c["df"] == 2
    assert c["mean"] == pytest.approx(1.0) and c["std"] == pytest.approx(1.0)
    assert c["t"] == pytest.approx(3 ** 0.5) and c["ci"] == pytest.approx((1 - 2.484138, 1 + 2.484138), abs=1e-6)
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        a, b = rng.normal(80, 1, n), rng.normal(80.5, 1, n)
        c = S.paired(dict(enumerate(a)), dict(enumerate(b)))
        ref = scipy_stats.ttest_rel(b, a)
        interval = ref.confidence_interval(0.95)
        assert c["t"] == pytest.approx(ref.statistic) and c["p"] == pytest.approx(ref.pvalue)
        assert c["ci"] == pytest.approx((interval.low, interval.high))
    # zero spread: an interval of zero width, no t-test; one pair: no spread at all; no common seed: nothing
    flat = S.paired({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5})
    assert flat["ci"] == pytest.approx((0.5, 0.5)) and flat["t"] is None and flat["p"] is None
    one = S.paired({0: 1.0}, {0: 3.0})
    assert one["mean"] == 2.0 and one["std"] is None and one["ci"] is None and one["p"] is None
    assert S.paired({0: 1.0}, {1: 2.0})["n"] == 0


def test_pairs_are_by_seed_key_whatever_order_the_runs_arrive_in():
    reference = {0: 10.0, 1: 20.0, 2: 30.0, 5: 99.0}  # seed 5 has no partner: left out
    values = {2: 31.0, 0: 12.0, 1: 23.0, 7: 0.0}  # filled in another order; seed 7 has no partner
    c = S.paired(reference, values)
    assert c["seeds"] == [0, 1, 2] and c["diffs"] == [2.0, 3.0, 1.0]
    shuffled = S.paired(dict(reversed(list(reference.items()))), dict(sorted(values.items())))
    assert shuffled == c


def test_holm_against_a_hand_computation():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert S.holm([0.2, None, 0.6]) == [pytest.approx(0.4), None, pytest.approx(0.6)]  # None: not a test
    assert S.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert S.holm([]) == []
    family = [S.paired({0: 0, 1: 0, 2: 0}, {0: 1, 1: 2, 2: 0}), S.paired({0: 0, 1: 0}, {0: 1, 1: 1})]
    S.holm_family(family)
    assert family[0]["p_holm"] == pytest.approx(family[0]["p"]) and family[1]["p_holm"] is None  # one test only


def test_seeds_for_power_match_gpower_and_a_simulation():
    # G*Power, t test of a mean difference from zero, two tails, α 0.05, power 0.8: d = 0.5 → 34, 0.8 → 15, 1 → 10
    # (actual power 0.8078, 0.8213, 0.8031); the answer depends on effect/std only
    assert [S.seeds_needed(d, 1.0) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    assert S.seeds_needed(-2.0, 4.0) == 34 and S.seeds_needed(0.3, 0.3) == 10
    assert S.paired_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=1e-4)
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 1.0, (100_000, 10))
    t = x.mean(1) / (x.std(1, ddof=1) / np.sqrt(10))
    assert (np.abs(t) > scipy_stats.t.ppf(0.975, 9)).mean() == pytest.approx(S.paired_power(1.0, 1.0, 10), abs=0.005)
    # a large effect, where the lower tail at n = 4, 5, ... is far out (scipy's nct.cdf gives NaN there): d = 3.9 →
    # 3 pairs (power 0.897; a simulation of 200k t-tests gives 0.897); d = 0.59/0.30 → 5 (0.742 with 4, 0.900 with 5)
    assert S.seeds_needed(3.62, 0.928) == 3 and S.seeds_needed(0.59, 0.30) == 5
    assert all(0.0 <= S.paired_power(3.62, 0.928, n) <= 1.0 for n in range(2, 40))
    assert S.seeds_needed(1.0, 0.0) is None and S.seeds_needed(0.0, 1.0) is None and S.seeds_needed(None, 1.0) is None
    assert S.seeds_needed(0.01, 10.0, limit=100) is None
    assert S.format_seeds(None, 0.01, 10.0) == "> 10000" and S.format_seeds(None, None, 1.0) == "—"


def _set_meta(seeds):
    return dict(finished="now", epochs=10, budget=0.5, seeds=seeds, command="c", platform="Linux", cpu="cpu",
                cpu_count=2, python="3", torch="t", timm="t", mmengine="m", wall_seconds=1.0, trained=0, reused=0,
                sum_run_seconds=1.0, jobs=1, work_root="/w")


def test_reports_do_not_depend_on_the_order_of_the_runs():
    """The default report's ranking, an experiment set's paired table and the downstream table give the same text
    when the same runs arrive in another order (#34)."""
    rng = random.Random(0)
    exp_set = runs.EXPERIMENT_SETS["pal-ablation"]
    labels = [label for label, _ in exp_set.runs]
    results = []
    for i, label in enumerate(labels):
        for seed in (0, 1, 2):
            top1 = 87 + i / 10 + [0.3, -0.5, 0.1][seed] * (i + 1)
            results.append(dict(method=label, seed=seed, top1=top1, top1_drop50=top1 - 20 - seed * i,
                                top1_drop50_by_patch={str(p): top1 - 25 + seed * seed * i for p in (4, 8, 16)}))
    shuffled = results[:]
    rng.shuffle(shuffled)
    assert shuffled != results
    text = report.set_report(exp_set, results, labels, _set_meta([0, 1, 2]), None, None, {})
    assert report.set_report(exp_set, shuffled, labels, _set_meta([0, 1, 2]), None, None, {}) == text
    # the seed-0 difference stays with seed 0: mixpro-smooth − mixpro top-1 per seed = 0.1 + 0.3·(2 − 1) etc.
    row = next(line for line in text.splitlines() if line.startswith("| mixpro-smooth | top-1 |"))
    assert "| +0.40, -0.40, +0.20 |" in row
    methods = ["baseline", "transmix", "mixpro"]
    ranked = [dict(method=m, seed=s, top1=80 + j + [0.2, -0.3, 0.4][s] * j, top1_drop50=50 + j * s)
              for j, m in enumerate(methods) for s in (0, 1, 2)]
    mixed = ranked[::-1]
    assert S.ranking_sentence(S.aggregate(ranked, methods)) == S.ranking_sentence(S.aggregate(mixed, methods))
    rows = [dict(head="linear", init=init, seed=seed, mIoU=10 + k + seed * k, **{"mIoU +MS": 11 + k - seed})
            for k, init in enumerate(downstream.INITS) for seed in (0, 1, 2)]
    meta = dict(platform="Linux", cpu="cpu", cpu_count=2, python="3", torch="t", mmengine="m", command="c", epochs=6,
                floor=7.5, wall_seconds=1.0, ran=0, jobs=2, sum_run_seconds=3.0, threads="1", work_root="/w",
                pretrain_root="/p", finished="now")
    pretrain = {"baseline": {2: 82.0, 0: 80.0, 1: 81.0}}
    first = downstream_markdown(dict(runs=rows, pretrain=pretrain), downstream.INITS, ["linear"], [0, 1, 2], meta,
                                None)
    rng.shuffle(rows)
    again = downstream_markdown(dict(runs=rows, pretrain={"baseline": {0: 80.0, 1: 81.0, 2: 82.0}}),
                                downstream.INITS, ["linear"], [0, 1, 2], meta, None)
    assert again == first
    # MixPro (k = 3) − baseline (k = 1) in mIoU: seed s → 2 + 2s
    assert "| Segmenter linear | mIoU | MixPro | +2.00, +4.00, +6.00 |" in first

"""Edges of the seed-level statistics (classification/experiments/reproduction/stats.py) that its main tests leave
open, found by ``make mutate MODULES=classification/experiments/reproduction/stats.py``: values by seed from the
aggregate, the Holm cap at 1, both tails of the power (power = α at no effect), the level and the seed limit of
:func:`seeds_needed`, and the ``p_holm`` slot every comparison carries before its family is adjusted.
"""
import math

import pytest
from scipy import stats as scipy_stats

from classification.experiments.reproduction import stats


def test_by_seed_pairs_each_seed_with_its_value():
    agg = {"mixpro": {"seeds": [2, 0, 1], "top1": [71.0, 70.0, 70.5], "drop": [1.0, 2.0, 3.0]}}
    assert stats.by_seed(agg, "mixpro", "top1") == {2: 71.0, 0: 70.0, 1: 70.5}
    assert stats.by_seed(agg, "mixpro", "drop") == {2: 1.0, 0: 2.0, 1: 3.0}
    assert stats.by_seed(agg, "baseline", "top1") == {} and stats.by_seed(agg, "mixpro", "other") == {}
    assert stats.by_seed({"mixpro": None}, "mixpro", "top1") == {}


def test_a_comparison_has_an_empty_holm_slot_until_its_family_is_adjusted():
    c = stats.paired({0: 1.0, 1: 2.0, 2: 2.5}, {0: 1.5, 1: 2.0, 2: 3.5})
    assert "p_holm" in c and c["p_holm"] is None
    stats.holm_family([c])
    assert c["p_holm"] == pytest.approx(c["p"])


def test_holm_caps_adjusted_p_values_at_one():
    assert stats.holm([0.6, 0.01, 0.4]) == pytest.approx([0.8, 0.03, 0.8])  # 3·0.01, 2·0.4, max(0.8, 1·0.6)
    assert stats.holm([0.9, 0.7]) == pytest.approx([1.0, 1.0])  # 2·0.7 = 1.4 → 1, then max(1, 0.9)
    assert stats.holm([0.3, None, 0.6]) == pytest.approx([0.6, None, 0.6])


@pytest.mark.parametrize("n", [3, 10])
def test_power_at_no_effect_is_the_level_from_both_tails(n):
    assert stats.paired_power(0.0, 1.0, n) == pytest.approx(0.05, abs=1e-9)
    assert stats.paired_power(0.0, 1.0, n, alpha=0.01) == pytest.approx(0.01, abs=1e-9)
    # a small effect: the lower tail adds P(T < −t_crit) under the noncentral t
    crit, nc = scipy_stats.t.ppf(0.975, n - 1), 0.3 * math.sqrt(n)
    expected = scipy_stats.nct.sf(crit, n - 1, nc) + scipy_stats.nct.cdf(-crit, n - 1, nc)
    assert stats.paired_power(0.3, 1.0, n) == pytest.approx(expected, rel=1e-9)


def test_seeds_needed_uses_its_level():
    strict, loose = stats.seeds_needed(1.0, 1.0, alpha=0.01), stats.seeds_needed(1.0, 1.0, alpha=0.05)
    assert type(strict) is int and type(loose) is int and strict > loose  # a count, not a bisection midpoint
    assert stats.paired_power(1.0, 1.0, strict, alpha=0.01) >= 0.8 > stats.paired_power(1.0, 1.0, strict - 1,
                                                                                        alpha=0.01)


def test_seeds_needed_gives_up_exactly_beyond_its_limit():
    """An effect that needs exactly limit + 1 seeds is None at the default limit of 10000."""
    low, high = 0.02, 0.04  # effect/std: about 2.80/√n needs n ≈ 10000
    for _ in range(60):
        mid = (low + high) / 2
        needed = stats.seeds_needed(mid, 1.0, limit=20000)
        if needed is not None and needed <= 10001:
            high = mid
        else:
            low = mid
    assert stats.seeds_needed(high, 1.0, limit=20000) == 10001
    assert stats.seeds_needed(high, 1.0) is None
    assert stats.seeds_needed(high, 1.0, limit=10001) == 10001

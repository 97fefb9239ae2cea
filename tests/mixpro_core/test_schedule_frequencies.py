"""Schedule frequencies at non-symmetric probabilities (docs/methods.md, "Method schedule"): a schedule that splits the
non-first mass evenly, reorders entries or renormalises would pass at MixPro's symmetric 0.5 / 0.25 / 0.25 but not
here. Tolerances are 5 binomial standard deviations of the observed frequency."""
import math

import pytest
import torch

from mixpro_core import build_schedule

N = 20000


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def assert_binomial(count, n, p, what):
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(count / n - p) <= 5 * sigma + 1e-12, f"{what}: {count / n:.4f} drawn, {p} expected (σ {sigma:.4f})"


def frequencies(schedule, n=N, seed=0):
    g = gen(seed)
    picks = [schedule.choose(g) for _ in range(n)]
    return {index: picks.count(index) for index in set(picks) | set(range(len(schedule.mixers))) | {None}}


@pytest.mark.parametrize("probs", [(0.6, 0.3, 0.1), (0.1, 0.6, 0.3), (0.2, 0.1, 0.4)])
def test_three_entries_are_drawn_with_their_own_probabilities(probs):
    """Three mixers at uneven probabilities, in several orders; the last case leaves 0.3 unmixed."""
    cfg = [dict(type=t, prob=p) for t, p in zip(("maskmix", "cutmix", "mixup"), probs)]
    schedule = build_schedule(cfg, dict(mask_size=8, patch_size=8))
    assert [m.name for m in schedule.mixers] == ["maskmix", "cutmix", "mixup"]
    counts = frequencies(schedule)
    for index, p in enumerate(probs):
        assert_binomial(counts[index], N, p, cfg[index]["type"])
    assert_binomial(counts[None], N, 1 - sum(probs), "no mixing")


def test_two_entries_at_switch_probability_0_8():
    """The baseline schedule with timm's switch_prob=0.8 (CutMix on 80% of the batches, Mixup on the rest)."""
    schedule = build_schedule([dict(type="cutmix", prob=0.8), dict(type="mixup", prob=0.2)])
    counts = frequencies(schedule, seed=1)
    assert_binomial(counts[0], N, 0.8, "cutmix")
    assert_binomial(counts[1], N, 0.2, "mixup")
    assert counts[None] == 0


def test_dropped_zero_entries_keep_the_others_probabilities():
    schedule = build_schedule([dict(type="maskmix", prob=0.0), dict(type="cutmix", prob=0.7),
                               dict(type="mixup", prob=0.1)], dict(mask_size=8, patch_size=8))
    assert [m.name for m in schedule.mixers] == ["cutmix", "mixup"]
    counts = frequencies(schedule, seed=2)
    assert_binomial(counts[0], N, 0.7, "cutmix")
    assert_binomial(counts[1], N, 0.1, "mixup")
    assert_binomial(counts[None], N, 0.2, "no mixing")


def test_the_kind_of_each_mixed_batch_follows_the_schedule():
    """Through the schedule's forward, not only ``choose``: the batch kinds of 3000 seeded calls."""
    schedule = build_schedule([dict(type="mixup", prob=0.6), dict(type="cutmix", prob=0.3)])
    x = torch.randn(2, 1, 4, 4, generator=gen(3))
    n = 3000
    kinds = [schedule(x, generator=gen(seed)).kind for seed in range(n)]
    assert_binomial(kinds.count("mixup"), n, 0.6, "mixup")
    assert_binomial(kinds.count("cutmix"), n, 0.3, "cutmix")
    assert_binomial(kinds.count("none"), n, 0.1, "no mixing")

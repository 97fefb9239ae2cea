"""Statistics of the reproduction reports. The seed is the unit: mean ± sample standard deviation (ddof=1) over seeds,
and comparisons paired by seed key (never by list order): the per-seed differences, their mean with a Student-t
confidence interval, the two-sided paired t-test, the Holm-adjusted p within a report's family of comparisons, and
how many seeds a paired t-test would need to resolve a given difference with the observed spread."""
from __future__ import annotations

import math
import statistics
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

PAPER_RANKING = ("mixpro", "transmix", "baseline")
DISPLAY = {"none": "none", "baseline": "baseline", "transmix": "TransMix", "maskmix": "MaskMix",
           "mixpro": "MixPro", "htm": "HTM", "vtm": "VTM", "rmix": "R-Mix", "rlmix": "RL-Mix",
           "resizemix": "ResizeMix"}
ALPHA = 0.05  # two-sided level of every test, interval (1 − ALPHA) and power statement
POWER = 0.8


def display_name(method: str) -> str:
    return DISPLAY.get(method, method)


def mean_std(values: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    """(mean, sample std with ddof=1); the std is None for a single value, both are None for none."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_std(values: Sequence[float]) -> str:
    """'89.00 ± 1.00', '87.50 (n=1)' or '—'."""
    mean, std = mean_std(values)
    if mean is None:
        return "—"
    return f"{mean:.2f} (n=1)" if std is None else f"{mean:.2f} ± {std:.2f}"


def aggregate(results: Sequence[dict], methods: Sequence[str]) -> Dict[str, dict]:
    """method → {seeds, top1 [...], drop [...], top1_mean/std, drop_mean/std, n}, seeds in ascending order."""
    stats = {}
    for method in methods:
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["seed"])
        top1 = [float(r["top1"]) for r in rows]
        drop = [float(r["top1_drop50"]) for r in rows]
        (m1, s1), (m2, s2) = mean_std(top1), mean_std(drop)
        stats[method] = dict(seeds=[r["seed"] for r in rows], top1=top1, drop=drop, top1_mean=m1, top1_std=s1,
                             drop_mean=m2, drop_std=s2, n=len(rows))
    return stats


def by_seed(stats: Dict[str, dict], method: str, key: str) -> Dict[int, float]:
    """{seed: value} of ``key`` ('top1' or 'drop') for ``method`` of :func:`aggregate`'s statistics."""
    s = stats.get(method) or {}
    return dict(zip(s.get("seeds", []), s.get(key, [])))


# --------------------------------------------------------------------------------------------------- paired tests
def paired(reference: Mapping[int, float], values: Mapping[int, float], alpha: float = ALPHA) -> dict:
    """``values − reference`` on the seeds both have (``{seed: value}`` each; pairing by seed key, in ascending seed
    order, whatever order the mappings were filled in): ``seeds``, ``diffs``, ``n``, ``mean``, ``std`` (ddof=1),
    ``ci`` = (low, high), the two-sided (1 − ``alpha``) Student-t interval of the mean difference, ``t`` = mean /
    (std/√n) with ``df`` = n − 1 and its two-sided ``p``; ``std``/``ci`` are None below two pairs, ``t``/``p`` also
    with zero spread (the interval is then the point); ``p_holm`` is set by :func:`holm_family`."""
    from scipy import stats as scipy_stats
    seeds = sorted(set(reference) & set(values))
    diffs = [float(values[s]) - float(reference[s]) for s in seeds]
    mean, std = mean_std(diffs)
    n, t, p, ci = len(diffs), None, None, None
    if std is not None:
        half = float(scipy_stats.t.ppf(1 - alpha / 2, n - 1)) * std / math.sqrt(n)
        ci = (mean - half, mean + half)
    if std:
        t = mean / (std / math.sqrt(n))
        p = float(2 * scipy_stats.t.sf(abs(t), n - 1))
    return dict(seeds=seeds, diffs=diffs, n=n, mean=mean, std=std, ci=ci, t=t, df=n - 1, p=p, p_holm=None)


def holm(pvalues: Sequence[Optional[float]]) -> List[Optional[float]]:
    """Holm's step-down adjustment of a family's p-values (None entries are not tests and stay None): with the m
    p-values in ascending order p₍₁₎ ≤ … ≤ p₍ₘ₎, adjusted p₍ᵢ₎ = max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎); returned
    in the input order. Rejecting where the adjusted p ≤ α controls the family-wise error rate at α."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out: List[Optional[float]] = [None] * len(pvalues)
    running, m = 0.0, len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def holm_family(comparisons: Sequence[dict]) -> None:
    """Set ``p_holm`` on every comparison of :func:`paired` in ``comparisons``, one family."""
    for c, adjusted in zip(comparisons, holm([c["p"] for c in comparisons])):
        c["p_holm"] = adjusted


def paired_power(effect: float, std: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` with ``n`` pairs when the differences have true mean
    ``effect`` and standard deviation ``std``: P(|T| > t₁₋α/₂,ₙ₋₁) with T noncentral t (df n − 1, noncentrality
    δ = effect·√n/std), the lower tail written as the upper one at −δ (scipy's ``nct.cdf`` far in the lower tail of a
    large δ gives NaN, its ``sf`` does not)."""
    from scipy import stats as scipy_stats
    df, nc = n - 1, effect * math.sqrt(n) / std
    crit = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    return float(scipy_stats.nct.sf(crit, df, nc) + scipy_stats.nct.sf(crit, df, -nc))


def seeds_needed(effect: Optional[float], std: Optional[float], alpha: float = ALPHA, power: float = POWER,
                 limit: int = 10000) -> Optional[int]:
    """The fewest seeds (≥ 2) with which a two-sided paired t-test at level ``alpha`` detects a true mean difference
    ``effect`` with power ≥ ``power`` when the per-seed differences have standard deviation ``std``; None when
    either is missing, ``std`` is 0, ``effect`` is 0, or more than ``limit`` seeds would be needed."""
    if effect is None or not std or not effect:
        return None
    enough = lambda n: paired_power(abs(effect), std, n, alpha) >= power  # noqa: E731 (increasing in n)
    low, high = 1, 2  # not enough at low (one pair is no test); find an n that is enough, then bisect
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


# --------------------------------------------------------------------------------------------------- formatting
def format_interval(c: dict) -> str:
    """'+0.13 [-2.03, +2.29]' (mean and its interval), '+0.13' without an interval, '—' without pairs."""
    if c["mean"] is None:
        return "—"
    return f"{c['mean']:+.2f}" + ("" if c["ci"] is None else f" [{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]")


def format_p(p: Optional[float]) -> str:
    return "—" if p is None else f"{p:.3f}"


def format_seeds(n: Optional[int], effect: Optional[float], std: Optional[float]) -> str:
    """:func:`seeds_needed`'s answer as a table cell: 'n', '—' (no effect or no spread to judge), '> 10000'."""
    if effect is None or not effect or not std:
        return "—"
    return "> 10000" if n is None else str(n)


# --------------------------------------------------------------------------------------------------- the ranking
def ranking_comparisons(stats: Dict[str, dict], keys: Sequence[str] = ("top1", "drop")) -> Dict[tuple, dict]:
    """The paper's ranking as paired comparisons, one family: (key, a, b) → :func:`paired` of b's and a's per-seed
    values (a − b) for MixPro − TransMix and TransMix − baseline on each of ``keys``, Holm-adjusted together."""
    out = {(key, a, b): paired(by_seed(stats, b, key), by_seed(stats, a, key))
           for key in keys for a, b in zip(PAPER_RANKING, PAPER_RANKING[1:])}
    holm_family(list(out.values()))
    return out


def ranking_sentence(stats: Dict[str, dict], key: str = "top1", comparisons: Optional[Dict[tuple, dict]] = None,
                     paper_gaps: Optional[Dict[tuple, float]] = None) -> str:
    """Whether mean MixPro > TransMix > baseline holds for ``key`` ('top1' or 'drop'), with the numbers, and what the
    paired tests of each gap say (``comparisons`` from :func:`ranking_comparisons`, computed here when None:
    mean difference, 95% interval, Holm-adjusted p); ``paper_gaps`` ((a, b) → the paper's a − b) adds how many seeds
    would resolve a gap of the paper's size with the observed spread."""
    missing = [m for m in PAPER_RANKING if not stats.get(m, {}).get("n")]
    if missing:
        return (f"The paper's ranking MixPro > TransMix > baseline cannot be checked here: no results for "
                f"{', '.join(display_name(m) for m in missing)}.")
    comparisons = comparisons if comparisons is not None else ranking_comparisons(stats, (key,))
    means = {m: stats[m][f"{key}_mean"] for m in PAPER_RANKING}
    holds = means["mixpro"] > means["transmix"] > means["baseline"]
    what = "test top-1" if key == "top1" else "top-1 under 50% patch drop"
    n = sorted({stats[m]["n"] for m in PAPER_RANKING})
    seeds = f"{n[0]} seed{'s' if n[0] != 1 else ''}" if len(n) == 1 else f"{n[0]}–{n[-1]} seeds"
    observed = " > ".join(f"{display_name(m)} {_value(stats[m], key)}"
                          for m in sorted(PAPER_RANKING, key=lambda m: -means[m]))
    if holds:
        sentence = (f"The paper's ranking MixPro > TransMix > baseline holds at this scale in mean {what} over "
                    f"{seeds}: {observed}.")
    else:
        sentence = (f"The paper's ranking MixPro > TransMix > baseline does not hold at this scale: mean {what} over "
                    f"{seeds} orders them {observed}.")
    gaps = [(a, b, comparisons[(key, a, b)]) for a, b in zip(PAPER_RANKING, PAPER_RANKING[1:])]
    if any(c["ci"] is None for _, _, c in gaps):
        return sentence + " With fewer than two paired seeds there is no spread to test the gaps against."
    parts = []
    for a, b, c in gaps:
        if c["p"] is None:
            verdict = "the same difference on every seed, no t-test"
        else:
            verdict = (f"Holm-adjusted p {format_p(c['p_holm'])}, "
                       f"{'resolved' if c['p_holm'] <= ALPHA else 'not resolved'}")
        part = f"{display_name(a)} − {display_name(b)} {format_interval(c)} ({verdict})"
        gap = (paper_gaps or {}).get((a, b))
        if gap is not None and c["std"]:
            part += (f"; a gap of the paper's size ({gap:+.1f}) with this spread needs "
                     f"{format_seeds(seeds_needed(gap, c['std']), gap, c['std'])} seeds for {POWER:.0%} power")
        parts.append(part)
    return (sentence + f" Paired by seed over {gaps[0][2]['n']} seeds (mean difference with its {1 - ALPHA:.0%} "
            f"interval, α = {ALPHA:g}): " + "; ".join(parts) + ".")


def _value(s: dict, key: str) -> str:
    mean, std = s[f"{key}_mean"], s[f"{key}_std"]
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"

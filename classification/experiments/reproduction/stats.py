"""Aggregation over seeds (mean ± sample standard deviation, ddof=1) and the sentence on whether the paper's ranking
MixPro > TransMix > baseline (docs/methods.md, "Paper tables") holds."""
from __future__ import annotations

import statistics
from typing import Dict, Optional, Sequence, Tuple

PAPER_RANKING = ("mixpro", "transmix", "baseline")
DISPLAY = {"none": "none", "baseline": "baseline", "transmix": "TransMix", "maskmix": "MaskMix",
           "mixpro": "MixPro", "htm": "HTM", "vtm": "VTM", "rmix": "R-Mix", "rlmix": "RL-Mix",
           "resizemix": "ResizeMix"}


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


def _value(s: dict, key: str) -> str:
    mean, std = s[f"{key}_mean"], s[f"{key}_std"]
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def ranking_sentence(stats: Dict[str, dict], key: str = "top1") -> str:
    """Whether mean MixPro > TransMix > baseline holds for ``key`` ('top1' or 'drop'), with the numbers, and whether
    the gaps exceed the seed-to-seed standard deviation."""
    missing = [m for m in PAPER_RANKING if not stats.get(m, {}).get("n")]
    if missing:
        return (f"The paper's ranking MixPro > TransMix > baseline cannot be checked here: no results for "
                f"{', '.join(display_name(m) for m in missing)}.")
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
    if any(stats[m][f"{key}_std"] is None for m in PAPER_RANKING):
        return sentence + " With a single seed there is no spread to judge the gaps against."
    unresolved = []
    for a, b in (("mixpro", "transmix"), ("transmix", "baseline")):
        gap = means[a] - means[b]
        if abs(gap) <= max(stats[a][f"{key}_std"], stats[b][f"{key}_std"]):
            unresolved.append(f"{display_name(a)} − {display_name(b)} = {gap:+.2f}")
    if unresolved:
        sentence += (f" Gaps within one seed standard deviation ({'; '.join(unresolved)}) are not resolved by "
                     f"this many seeds.")
    else:
        sentence += " Both gaps are larger than the seed-to-seed standard deviation."
    return sentence


def paired_difference(reference: Sequence[float], values: Sequence[float]) -> dict:
    """Seed-by-seed differences ``values − reference`` (same seeds, same order): ``diffs``, ``mean``, ``std`` (ddof=1),
    the paired t statistic ``t`` = mean / (std/√n) with ``df`` = n − 1 and its two-sided ``p`` (Student's t,
    scipy); ``t``/``p`` are None below two pairs or with zero spread."""
    if len(reference) != len(values):
        raise ValueError(f"paired values need the same seeds: {len(reference)} reference vs {len(values)} values")
    diffs = [b - a for a, b in zip(reference, values)]
    mean, std = mean_std(diffs)
    t = p = None
    if std:
        from scipy import stats as scipy_stats
        t = mean / (std / len(diffs) ** 0.5)
        p = float(2 * scipy_stats.t.sf(abs(t), len(diffs) - 1))
    return dict(diffs=diffs, mean=mean, std=std, t=t, df=len(diffs) - 1, p=p)

"""Time estimates of the reproduction, only from measured runs: the ``train_seconds`` / ``run_seconds`` that every
``result.json`` records (see :func:`estimate_run_seconds`); before the first run of a work root has finished there is
none.
"""
from __future__ import annotations

import statistics
from typing import Optional, Sequence, Tuple


def _timed(result: dict) -> bool:
    return all(isinstance(result.get(k), (int, float)) for k in ("train_seconds", "run_seconds")) \
        and result.get("epochs", 0) > 0


def estimate_run_seconds(measured: Sequence[dict], method: str, epochs: int) -> Optional[float]:
    """A run's time predicted from finished ones: ``epochs`` × training seconds per epoch + the rest of a run
    (process start, test, robustness), both averaged over the method's finished runs in ``measured`` (over all of
    them when the method has none); None when nothing was timed."""
    timed = [r for r in measured if _timed(r)]
    rows = [r for r in timed if r.get("method") == method] or timed
    if not rows:
        return None
    per_epoch = statistics.fmean(r["train_seconds"] / r["epochs"] for r in rows)
    rest = statistics.fmean(max(0.0, r["run_seconds"] - r["train_seconds"]) for r in rows)
    return epochs * per_epoch + rest


def estimate_plan_seconds(measured: Sequence[dict], plan: Sequence[tuple], epochs: int, jobs: int = 1,
                          running: Sequence[Tuple[str, float]] = ()) -> Optional[float]:
    """Wall seconds until the (method, seed) runs of ``plan`` and the ``running`` ones ((method, seconds since its
    start) pairs) have finished, ``jobs`` at a time: each run takes :func:`estimate_run_seconds` (a running one what
    is left of it) and the runs of ``plan`` start in order, each on the first free slot (with ``jobs=1``: the sum).
    None when nothing was timed."""
    left = [estimate_run_seconds(measured, method, epochs) for method, _ in running]
    estimates = [estimate_run_seconds(measured, method, epochs) for method, _ in plan]
    if any(e is None for e in left + estimates):
        return None
    slots = sorted([max(0.0, e - elapsed) for e, (_, elapsed) in zip(left, running)]
                   + [0.0] * max(0, jobs - len(running)))
    for estimate in estimates:
        slots[0] += estimate
        slots.sort()
    return max(slots, default=0.0)


def hms(seconds: Optional[float]) -> str:
    """'1h02m03s', '4m05s'; 'unknown' for None."""
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"

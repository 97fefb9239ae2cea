"""What the micro-benchmarks (:mod:`classification.benchmarks.micro`) and the end-to-end training benchmark
(:mod:`classification.benchmarks.train`) share: device synchronisation, timing (median of runs, round-robin, one
timed window of iterations), peak memory, synthetic per-sample inputs for methods that read them, and the report
(machine, stack, command, Markdown table, JSON).
"""
from __future__ import annotations

import gc
import json
import os
import shlex
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, Iterator, List, Optional

import torch

from classification.foundation.atomic import atomic_write_text
from classification.foundation.host import environment

MIB = 2 ** 20


# ----------------------------------------------------------------------------------------------- measuring
def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def step_targets(model, labels: torch.Tensor, num_classes: int):
    """What a benchmark step passes as ``data_samples``: the labels (B,), or for a method that reads per-sample batch
    inputs (``Method.EXTRAS``: TokenMix's teacher label maps) the labels with synthetic inputs of the released
    shapes — top-5 scores and class ids (< ``num_classes``) on a 14×14 map, the GT class first, the whole image as
    crop box. ``model``: a MixClassifier (or a wrapper of one, with ``.module``)."""
    method = getattr(getattr(model, "module", model), "method", None)
    extras = getattr(method, "EXTRAS", ())
    if not extras:
        return labels
    from mixpro_core.tokenmix import LABEL_MAP_EXTRAS
    if tuple(extras) != LABEL_MAP_EXTRAS:
        raise SystemExit(f"the benchmarks have no synthetic inputs for {type(method).__name__}'s {extras}")
    b, gen = labels.shape[0], torch.Generator().manual_seed(0)
    scores = torch.rand(b, 5, 14, 14, generator=gen).softmax(1).to(labels.device)
    indices = torch.randint(0, num_classes, (b, 5, 14, 14), generator=gen).to(labels.device)
    indices[:, 0] = labels.view(b, 1, 1)
    box = torch.tensor([0.0, 0.0, 1.0, 1.0], device=labels.device).expand(b, 4)
    return dict(labels=labels, label_scores=scores, label_indices=indices, crop_box=box)


def timed(fn, repeats: int, warmup: int = 3, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def round_robin(fns: Dict[str, Callable[[], None]], repeats: int, warmup: int, device: str) -> Dict[str, List[float]]:
    """Times (ms) of ``repeats`` calls of every fn, interleaved one call each per round, after ``warmup`` rounds."""
    samples = {name: [] for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t = timed(fn, repeats=1, warmup=0, device=device)
            if r >= warmup:
                samples[name].append(t)
    return samples


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ library logs profiler_start/stop lines there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_extra_bytes(fn: Callable[[], object], device: str) -> int:
    """Peak of the bytes torch allocates while ``fn()`` runs, above what was allocated when it started.

    CUDA: ``torch.cuda.max_memory_allocated`` (reset before the call). CPU: torch has no peak counter for host
    memory, so the call runs under ``torch.profiler`` with ``profile_memory=True`` and the allocation / free events
    of the CPU allocator are summed in time order; the peak of that running sum is returned. Both count tensor
    storage only (not the allocator's cached or the process's other memory)."""
    if str(device).startswith("cuda"):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        sync(device)
        peak = torch.cuda.max_memory_allocated() - base
        del out
        return int(peak)
    from torch.profiler import ProfilerActivity, profile
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    del out
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    running = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()
        peak = max(peak, running)
    return int(peak)


def autocast(device: str, amp: Optional[str]):
    if not amp:
        return nullcontext()
    return torch.autocast(device_type="cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


# ----------------------------------------------------------------------------------------------- timed window
class WindowTimer:
    """Times iterations ``warmup+1 … warmup+iters`` as one window closed by device synchronisations.

    Call :meth:`fetched` when the host has the next batch and :meth:`done` after each iteration's work was issued;
    ``data_wait_s`` sums the host's time between the end of one iteration and the arrival of the next batch."""

    def __init__(self, warmup: int, iters: int, device: str):
        self.warmup, self.iters, self.device = warmup, iters, device
        self.count, self.t0, self.t1, self.data_wait_s = 0, None, None, 0.0
        self._last_done: Optional[float] = None

    @property
    def finished(self) -> bool:
        return self.t1 is not None

    def fetched(self) -> None:
        if self.t0 is not None and self.t1 is None and self._last_done is not None:
            self.data_wait_s += time.perf_counter() - self._last_done

    def done(self) -> None:
        self.count += 1
        if self.count == self.warmup:
            sync(self.device)
            self.t0 = time.perf_counter()
        elif self.count == self.warmup + self.iters:
            sync(self.device)
            self.t1 = time.perf_counter()
        self._last_done = time.perf_counter()

    def result(self, batch: int) -> dict:
        if self.t1 is None:
            raise RuntimeError(f"the timed window did not complete: {self.count} of {self.warmup + self.iters} "
                               f"iterations ran")
        window = self.t1 - self.t0
        return dict(s_per_iter=window / self.iters, img_per_s=self.iters * batch / window, window_s=window,
                    data_wait_share=self.data_wait_s / window)


def forever(loader) -> Iterator:
    while True:
        yield from loader


def timed_loop(batches: Iterator, step: Callable, timer: WindowTimer) -> None:
    while not timer.finished:
        batch = next(batches)
        timer.fetched()
        step(batch)
        timer.done()


def free_memory(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------- reporting
def machine_info(device: str) -> dict:
    """:func:`classification.foundation.host.environment` plus torch's thread count and the device measured on (the GPU
    only when the device is one)."""
    info = environment()
    if not str(device).startswith("cuda"):
        info["gpu"] = None
    return dict(info, torch_threads=torch.get_num_threads(), device=str(device))


def command_line(argv: List[str]) -> str:
    return shlex.join(["python", "tools/benchmark.py", *argv])


def markdown(result: dict) -> str:
    """The machine, the stack, the command, the settings line, the table and the notes, as Markdown."""
    m = result["machine"]
    lines = [f"machine: {m['platform']}, {m['cpu']}, {m['cpu_count']} CPUs ({m['torch_threads']} torch threads), "
             f"GPU: {m['gpu'] or 'none'}; device {m['device']}",
             f"stack: python {m['python']}, torch {m['torch']}, timm {m['timm']}",
             f"command: `{result['command']}`",
             "", result["settings"], "",
             "| " + " | ".join(result["columns"]) + " |",
             "|" + "---|" * len(result["columns"])]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in result["rows"]]
    if result.get("notes"):
        lines += [""] + list(result["notes"])
    return "\n".join(lines)


def report(args, result: dict) -> dict:
    result = dict(command=command_line(args.argv), machine=machine_info(args.device), **result)
    print(markdown(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
    return result

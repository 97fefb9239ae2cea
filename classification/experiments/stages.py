"""Run a pipeline's stages a few at a time, each in its own spawned, single-threaded worker process.

A :class:`Stage` names a module-level function and its keyword arguments (both picklable, as is its return value),
the stages that must finish first (``after``: names listed earlier) and the directory it writes (``work_dir``: no two
stages may share one). :func:`run_stages` with ``jobs=1`` runs every stage in this process, in list order; with
``jobs ≥ 2`` each stage runs in a fresh ``spawn`` interpreter, at most ``jobs`` at a time, starting in list order as
soon as its ``after`` stages have finished, with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` and ``torch.set_num_threads``
at usable cores // ``jobs`` (at least 1); ``local=True`` stages run in this process, with its threads, while no worker
runs (measured trade-off: docs/benchmarks.md, "make demo in about 10 minutes"). A failing worker stops the run: the
others are terminated and :class:`StageError` names the stage and carries its traceback (or the exit code of a worker
that died without a result); a stage that raised ``SystemExit`` ends the run with that message, one that raised a
:class:`~classification.foundation.errors.UserError` with that error (one line) naming the stage.
"""
from __future__ import annotations

import multiprocessing
import os
import os.path as osp
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Dict, List, Optional, Sequence

from classification.foundation.errors import UserError
from classification.foundation.host import THREAD_VARIABLES, usable_cores

__all__ = ["Stage", "StageRun", "StageError", "run_stages"]


@dataclass(frozen=True)
class Stage:
    """One unit of work: ``fn(**kwargs)``, after the stages named in ``after``, writing ``work_dir``; ``local``: in
    the calling process, while no worker runs."""
    name: str
    fn: Callable[..., Any]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    after: Sequence[str] = ()
    work_dir: Optional[str] = None
    local: bool = False


@dataclass
class StageRun:
    """A finished stage: its return value, the process it ran in, and its start / end in seconds since the call."""
    result: Any
    pid: int
    started: float
    finished: float


class StageError(RuntimeError):
    """A stage failed in its worker process; ``stage`` is its name, the message holds the worker's traceback."""

    def __init__(self, stage: str, detail: str):
        super().__init__(f"stage {stage!r} failed in its worker process:\n{detail}")
        self.stage = stage


def _check(stages: Sequence[Stage], jobs: int) -> None:
    if int(jobs) < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs}")
    seen, dirs = set(), {}
    for stage in stages:
        if stage.name in seen:
            raise ValueError(f"two stages are named {stage.name!r}")
        missing = [name for name in stage.after if name not in seen]
        if missing:
            raise ValueError(f"stage {stage.name!r} runs after {missing}, which are not listed before it")
        seen.add(stage.name)
        if stage.work_dir is not None:
            key = osp.realpath(stage.work_dir)
            if key in dirs:
                raise ValueError(f"stages {dirs[key]!r} and {stage.name!r} would both write {stage.work_dir}")
            dirs[key] = stage.name


def _worker(conn, fn: Callable, kwargs: dict, threads: int, initializer: Optional[Callable]) -> None:
    """Entry point of a spawned worker: sends ``("ok", result)``, ``("exit", message)``, ``("user", message)`` or
    ``("error", traceback)``."""
    try:
        import torch
        torch.set_num_threads(threads)
        if initializer is not None:
            initializer()
        message = ("ok", fn(**kwargs))
    except SystemExit as exc:
        message = ("exit", str(exc.code))
    except UserError as exc:
        message = ("user", str(exc))
    except BaseException:
        message = ("error", traceback.format_exc())
    try:
        conn.send(message)
    except Exception:  # an unpicklable result
        conn.send(("error", traceback.format_exc()))
    conn.close()


def run_stages(stages: Sequence[Stage], jobs: int = 1, initializer: Optional[Callable[[], None]] = None,
               on_event: Optional[Callable[[str], None]] = print) -> Dict[str, StageRun]:
    """Run ``stages`` (see the module docstring) and return ``{name: StageRun}``; ``initializer()`` runs in every
    worker before its stage (the caller has run it in this process); ``on_event`` gets one line per start / end."""
    _check(stages, jobs)
    t0 = time.time()
    runs: Dict[str, StageRun] = {}
    if jobs == 1:
        for stage in stages:
            started = time.time() - t0
            result = stage.fn(**stage.kwargs)
            runs[stage.name] = StageRun(result, os.getpid(), started, time.time() - t0)
        return runs

    threads = max(1, usable_cores() // jobs)
    context = multiprocessing.get_context("spawn")
    pending: List[Stage] = list(stages)
    running: Dict[Any, tuple] = {}  # receiving connection → (stage, process, start)
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})  # read by the spawned interpreters
    try:
        while pending or running:
            ready = next((s for s in pending if all(name in runs for name in s.after)
                          and (not running if s.local else len(running) < jobs)), None)
            if ready is not None:
                pending.remove(ready)
                started = time.time() - t0
                if ready.local:
                    runs[ready.name] = StageRun(ready.fn(**ready.kwargs), os.getpid(), started, time.time() - t0)
                    continue
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_worker, name=f"stage {ready.name}",
                                          args=(send, ready.fn, ready.kwargs, threads, initializer))
                process.start()
                send.close()  # the worker holds the only sending end: its death reads as EOF here
                running[receive] = (ready, process, started)
                if on_event:
                    on_event(f"[stages] started {ready.name} (pid {process.pid}, {threads} thread(s), "
                             f"{len(running)} running)")
                continue
            for receive in wait(list(running)):
                stage, process, started = running.pop(receive)
                try:
                    kind, payload = receive.recv()
                except EOFError:
                    process.join()
                    raise StageError(stage.name, f"the process exited with code {process.exitcode} "
                                                 "without a result (killed, or out of memory?)") from None
                finally:
                    receive.close()
                process.join()
                if kind == "exit":
                    raise SystemExit(f"stage {stage.name!r}: {payload}")
                if kind == "user":
                    raise UserError(f"stage {stage.name!r}: {payload}")
                if kind == "error":
                    raise StageError(stage.name, payload)
                runs[stage.name] = StageRun(payload, process.pid, started, time.time() - t0)
                if on_event:
                    on_event(f"[stages] finished {stage.name} in {(runs[stage.name].finished - started) / 60:.1f} "
                             "min")
    finally:
        for receive, (stage, process, _) in running.items():
            process.terminate()
            process.join()
            receive.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return runs

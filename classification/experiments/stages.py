"""The one scheduler of the experiments (the demo, the reproduction's runs and its downstream set): a pipeline's
stages a few at a time, each in its own spawned worker process (or in a thread of this one).

A :class:`Stage` names a module-level function and its keyword arguments (both picklable, as is its return value),
the stages that must finish first (``after``: names listed earlier) and the directory it writes (``work_dir``: no two
stages may share one). :func:`run_stages` with ``jobs=1`` runs every stage in this process, in list order; with
``jobs ≥ 2`` each stage runs in a fresh ``spawn`` interpreter, at most ``jobs`` at a time, starting in list order as
soon as its ``after`` stages have finished, with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` and ``torch.set_num_threads``
at usable cores // ``jobs`` (at least 1); ``local=True`` stages run in this process, with its threads, while no worker
runs (measured trade-off: docs/benchmarks.md, "make demo in about 10 minutes"); ``thread=True`` stages run in a thread
of this process beside the others (each waits on a child process of its own). A failure stops the run unless
``on_failure`` keeps it going: nothing new starts, the workers are terminated, the thread stages run to their end, then
the first failure is raised — :class:`StageError` naming the stage with its traceback (or the exit code of a worker
that died without a result); a worker stage that raised ``SystemExit`` ends the run at once with that message, one
that raised a :class:`~classification.foundation.errors.UserError` with that error (one line) naming the stage; a
stage run here (or in a thread) raises its own error.
"""
from __future__ import annotations

import multiprocessing
import os
import os.path as osp
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from classification.foundation.errors import UserError
from classification.foundation.host import THREAD_VARIABLES, usable_cores

__all__ = ["Stage", "StageRun", "StageError", "run_stages"]


@dataclass(frozen=True)
class Stage:
    """One unit of work: ``fn(**kwargs)``, after the stages named in ``after``, writing ``work_dir``; ``local``: in
    the calling process, while no worker runs; ``thread``: in a thread of the calling process beside the others (a
    stage that waits on a child process of its own, such as a reproduction run; not terminated by a failure)."""
    name: str
    fn: Callable[..., Any]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    after: Sequence[str] = ()
    work_dir: Optional[str] = None
    local: bool = False
    thread: bool = False


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


class _Workers:
    """The spawned worker processes of a call, and whether it has stopped launching them (after a failure)."""

    def __init__(self, threads: int, initializer: Optional[Callable[[], None]], on_event):
        self.threads, self.initializer, self.on_event = threads, initializer, on_event
        self.context, self.lock, self.running, self.stopped = multiprocessing.get_context("spawn"), Lock(), {}, False

    def run(self, stage: Stage) -> Tuple[Any, int]:
        """``stage`` in a fresh worker (this thread waits for it): its (result, pid); its failure raised here as
        StageError, UserError or SystemExit naming the stage."""
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_worker, name=f"stage {stage.name}",
                                       args=(send, stage.fn, stage.kwargs, self.threads, self.initializer))
        with self.lock:
            if self.stopped:
                raise StageError(stage.name, "not started: the run stopped")
            process.start()
            self.running[stage.name] = process
        send.close()  # the worker holds the only sending end: its death reads as EOF here
        if self.on_event:
            self.on_event(f"[stages] started {stage.name} (pid {process.pid}, {self.threads} thread(s), "
                          f"{len(self.running)} running)")
        try:
            kind, payload = receive.recv()
        except EOFError:
            process.join()
            raise StageError(stage.name, f"the process exited with code {process.exitcode} "
                                         "without a result (killed, or out of memory?)") from None
        finally:
            receive.close()
            with self.lock:
                self.running.pop(stage.name, None)
        process.join()
        if kind == "exit":
            raise SystemExit(f"stage {stage.name!r}: {payload}")
        if kind == "user":
            raise UserError(f"stage {stage.name!r}: {payload}")
        if kind == "error":
            raise StageError(stage.name, payload)
        return payload, process.pid

    def stop(self) -> None:
        """Start no more workers; terminate the running ones."""
        with self.lock:
            self.stopped = True
            for process in self.running.values():
                process.terminate()


@contextmanager
def _thread_variables(threads: Optional[int]):
    """``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` at ``threads`` (read by spawned interpreters), restored after."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    if threads is not None:
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _next(pending: Sequence[Stage], runs: Dict[str, StageRun], running: int, jobs: int) -> Optional[Stage]:
    """The first pending stage whose ``after`` stages have finished and that may start now."""
    return next((s for s in pending if all(name in runs for name in s.after)
                 and (not running if s.local else running < jobs)), None)


def run_stages(stages: Sequence[Stage], jobs: int = 1, initializer: Optional[Callable[[], None]] = None,
               on_event: Optional[Callable[[str], None]] = print, on_start: Optional[Callable[[Stage], None]] = None,
               on_end: Optional[Callable[[Stage, StageRun], None]] = None,
               on_failure: Optional[Callable[[Stage, Exception], bool]] = None) -> Dict[str, StageRun]:
    """Run ``stages`` (see the module docstring) and return ``{name: StageRun}`` of the finished ones;
    ``initializer()`` runs in every worker before its stage (the caller has run it in this process); ``on_event``
    gets one line per worker's start / end; ``on_start(stage)`` / ``on_end(stage, run)`` are called here as each
    stage starts / finishes, ``on_failure(stage, error)`` for each failure: True goes on without it (and without the
    stages after it), False (or no ``on_failure``) stops the run, whose first failure is raised once the thread
    stages have ended."""
    _check(stages, jobs)
    t0, order = time.time(), {s.name: i for i, s in enumerate(stages)}
    runs: Dict[str, StageRun] = {}
    pending, running, failure = list(stages), {}, None  # running: future → (stage, start)
    workers = _Workers(max(1, usable_cores() // jobs), initializer, on_event)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        with _thread_variables(workers.threads if jobs > 1 else None):
            while running or (pending and failure is None):
                ready = _next(pending, runs, len(running), jobs) if failure is None else None
                if ready is not None:
                    pending.remove(ready)
                    if on_start:
                        on_start(ready)
                    started = time.time() - t0
                    if jobs == 1 or ready.local:
                        done = {_finished_here(ready)}
                    else:
                        running[pool.submit(_in_thread if ready.thread else workers.run, ready)] = (ready, started)
                        continue
                elif not running:  # what is left runs after a failed stage
                    break
                else:
                    done = wait(list(running), return_when=FIRST_COMPLETED)[0]
                for future in sorted(done, key=lambda f: order[(running.get(f) or (ready,))[0].name]):
                    stage, started = running.pop(future, (ready, started))
                    try:
                        result, pid = future.result()
                    except Exception as error:
                        if not (workers.stopped and not stage.thread) and not (on_failure and on_failure(stage, error)):
                            failure = failure or error
                            workers.stop()
                        continue
                    runs[stage.name] = StageRun(result, pid, started, time.time() - t0)
                    if on_event and jobs > 1 and not (stage.local or stage.thread):
                        on_event(f"[stages] finished {stage.name} in {(time.time() - t0 - started) / 60:.1f} min")
                    if on_end:
                        on_end(stage, runs[stage.name])
    finally:
        workers.stop()
        pool.shutdown(wait=True)
    if failure is not None:
        raise failure
    return runs


def _in_thread(stage: Stage) -> Tuple[Any, int]:
    return stage.fn(**stage.kwargs), os.getpid()


def _finished_here(stage: Stage) -> Future:
    """``stage`` run now, in this thread: a finished future holding its (result, pid) or its exception."""
    future: Future = Future()
    try:
        future.set_result(_in_thread(stage))
    except Exception as error:
        future.set_exception(error)
    return future

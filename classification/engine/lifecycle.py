"""The one run lifecycle of every task: build the Runner of a prepared config
(:func:`classification.engine.launch.prepare_config` / ``prepare_test_config``), train and / or test, then shut its
data-loader workers down, drop the Runner and finish the process group, on success and on preemption alike.

:func:`run` returns a :class:`Finished` (test metrics as the Runner gives them, training seconds, rank, work dir). A
:class:`~classification.engine.preemption.TrainingPreempted` stop is raised again after that clean end; any other
exception after the workers are released and the Runner dropped (no process-group barrier: other ranks may be gone).
The Runner never leaves :func:`run`: ``hooks`` are registered on it before training.

A work dir is one run's: :func:`work_dir_lock` holds ``<work_dir>/run.lock`` (rank 0, before the Runner writes
anything) for the run's life; a second live run into the same folder stops with one line naming the holder.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

from mmengine.logging import print_log

from classification.foundation.atomic import process_exists
from classification.engine.distributed import finish_distributed, release_dataloader_workers
from classification.foundation.errors import UserError
from classification.engine.preemption import TrainingPreempted
from classification.engine.runner import MixProRunner


@dataclass
class Finished:
    """What :func:`run` leaves: ``metrics`` of ``Runner.test()`` ({} without a test), ``train_seconds`` of
    ``Runner.train()`` alone (0 without training), the ``rank`` and ``work_dir`` of the Runner."""

    metrics: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    rank: int = 0
    work_dir: str = ""


LOCK_FILE = "run.lock"


class WorkDirInUseError(UserError):
    """Another live run holds the work dir's lock; ``holder`` is its record (pid, host, started, command)."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


@dataclass
class WorkDirLock:
    """A held work-dir lock: the lock file, its open descriptor (``flock``-ed where the file system allows) and the
    record of a dead run it replaced (None when the folder was free)."""

    path: str
    fd: int
    replaced: Optional[dict] = None


def _describe(record: dict) -> str:
    command = f" ({record['command']})" if record.get("command") else ""
    return f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started {record.get('started', '?')}{command}"


def _read_record(fd: int) -> Optional[dict]:
    """The holder record in the lock file: None when empty, {} when unreadable (a holder that died mid-write)."""
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 1 << 16)
    if not data.strip():
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _open_lock_file(path: str, work_dir: str) -> int:
    try:
        os.makedirs(work_dir, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise UserError(f"cannot write into the work dir {work_dir}: {err.strerror or err}") from None


def _same_file(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def acquire_work_dir(work_dir: str) -> WorkDirLock:
    """Take ``<work_dir>/run.lock`` (the folder is created): an exclusive ``flock`` on it (released by the kernel
    however the process ends) and a record ``{pid, host, started, command}`` in it. WorkDirInUseError naming the holder
    when a live run holds it; a record left by a dead run (killed: same host, not holding the lock, or its pid gone
    where the file system has no ``flock``) is taken over with a warning. A record of another host is never taken
    over (its process cannot be checked from here): the message says to delete the file if that run has ended. A
    dead run's forked loader workers may hold the ``flock`` a few seconds longer: its file is replaced.
    UserError naming the folder when it cannot be written."""
    path, host = osp.join(work_dir, LOCK_FILE), socket.gethostname()
    dead = None  # the record of a dead run whose orphaned loader workers still hold the flock
    while True:
        fd = _open_lock_file(path, work_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                locked = False  # no flock here (some network file systems): the record alone decides
            else:
                holder = _read_record(fd) or {}
                if holder.get("host") == host and isinstance(holder.get("pid"), int) and \
                        not process_exists(holder["pid"]) and _same_file(path, fd):
                    os.unlink(path)  # a killed run: its forked loader workers hold the flock until they notice
                    os.close(fd)
                    dead = holder
                    continue
                os.close(fd)
                raise WorkDirInUseError(f"the work dir {work_dir} is in use by another run: {_describe(holder)}; "
                                        f"wait for it to end or choose another --work-dir", holder) from None
        if _same_file(path, fd):
            break
        os.close(fd)  # the holder released (removed) the file between our open and flock: take the new one
    previous = _read_record(fd)
    previous = dead if previous is None else previous
    if previous is not None:
        alive = not locked and isinstance(previous.get("pid"), int) and process_exists(previous["pid"])
        if previous and previous.get("host") != host:
            os.close(fd)
            raise WorkDirInUseError(f"the work dir {work_dir} is locked by a run on another host: {_describe(previous)}"
                                    f"; if that run has ended, delete {path}", previous)
        if alive:
            os.close(fd)
            raise WorkDirInUseError(f"the work dir {work_dir} is in use by another run: {_describe(previous)}; "
                                    f"wait for it to end or choose another --work-dir", previous)
        print_log(f"{path}: taking over the stale lock of a run that no longer runs (killed?): {_describe(previous)}",
                  logger="current", level=logging.WARNING)
    record = dict(pid=os.getpid(), host=host, started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                  command=" ".join([osp.basename(sys.argv[0])] + sys.argv[1:])[:300])
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)
    return WorkDirLock(path, fd, previous)


def release_work_dir(lock: WorkDirLock) -> None:
    """Remove the lock file, then drop the ``flock`` (a run waiting on the removed file takes a new one)."""
    try:
        os.unlink(lock.path)
    except FileNotFoundError:
        pass
    os.close(lock.fd)


@contextmanager
def work_dir_lock(work_dir: str) -> Iterator[WorkDirLock]:
    """:func:`acquire_work_dir` for the ``with`` block, released on any exit of it (exceptions, Ctrl-C,
    preemption); after a kill the next run takes the stale record over."""
    lock = acquire_work_dir(work_dir)
    try:
        yield lock
    finally:
        release_work_dir(lock)


def launch_rank(cfg) -> int:
    """The global rank of this process, known before the Runner starts the process group: torch.distributed's when
    it runs, else the launcher's environment (torchrun ``RANK``, slurm ``SLURM_PROCID``, MPI), else 0."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    variable = {"pytorch": "RANK", "slurm": "SLURM_PROCID", "mpi": "OMPI_COMM_WORLD_RANK"}.get(
        cfg.get("launcher") or "none")
    return int(os.environ.get(variable, 0)) if variable else 0


def run(cfg, *, train: bool = True, test: bool = False, hooks: Sequence = ()) -> Finished:
    """Build a :class:`MixProRunner` from ``cfg``, register ``hooks``, ``train()`` then ``test()`` as asked, and end
    the run cleanly (module docstring); rank 0 holds the work dir's lock (:func:`work_dir_lock`) throughout."""
    work_dir = cfg.get("work_dir")
    with work_dir_lock(work_dir) if work_dir and launch_rank(cfg) == 0 else nullcontext():
        return _run(cfg, train, test, hooks)


def _run(cfg, train: bool, test: bool, hooks: Sequence) -> Finished:
    runner = MixProRunner.from_cfg(cfg)
    finished = Finished(rank=runner.rank, work_dir=runner.work_dir)
    preempted = None
    try:
        for hook in hooks:
            runner.register_hook(hook)
        if train:
            t0 = time.time()
            runner.train()
            finished.train_seconds = time.time() - t0
        if test:
            finished.metrics = runner.test()
    except TrainingPreempted as stop:
        preempted = stop
    finally:
        release_dataloader_workers(runner)
        del runner  # frees the DDP reducer's reference to the process group (see finish_distributed)
    finish_distributed()
    if preempted is not None:
        raise preempted
    return finished

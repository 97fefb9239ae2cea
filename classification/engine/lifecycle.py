"""The one run lifecycle of every task: build the Runner of a prepared config
(:func:`classification.engine.launch.prepare_config` / ``prepare_test_config``), train and / or test, then shut its
data-loader workers down, drop the Runner and finish the process group, on success and on preemption alike.

:func:`run` returns a :class:`Finished` (test metrics as the Runner gives them, training seconds, rank, work dir). A
:class:`~classification.engine.preemption.TrainingPreempted` stop is raised again after that clean end; any other
exception after the workers are released and the Runner dropped (no process-group barrier: other ranks may be gone).
The Runner never leaves :func:`run`: ``hooks`` are registered on it before training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from classification.engine.distributed import finish_distributed, release_dataloader_workers
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


def run(cfg, *, train: bool = True, test: bool = False, hooks: Sequence = ()) -> Finished:
    """Build a :class:`MixProRunner` from ``cfg``, register ``hooks``, ``train()`` then ``test()`` as asked, and end
    the run cleanly (module docstring)."""
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

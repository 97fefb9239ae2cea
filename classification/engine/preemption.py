"""Preemption: on SIGTERM / SIGUSR1 (Ctrl-C in a single-process run), finish the iteration, checkpoint, exit.

:class:`PreemptionHook`'s handler only sets a flag (loader workers, forked later, inherit it, so a signal sent to the
whole job step does not kill them). After every training iteration the ranks ``all_reduce`` the flag (MAX, a CPU
tensor in the gloo group :func:`cpu_group`: no host↔device synchronisation), so all stop after the same iteration;
rank 0 writes ``<work_dir>/preempted.pth`` atomically (model, optimiser, schedulers, message hub; meta ``epoch`` = the
unfinished epoch, ``iter`` = iterations done) and points ``last_checkpoint`` at it; every rank raises
:class:`TrainingPreempted`, a ``SystemExit`` with :data:`PREEMPTED_EXIT_CODE` (75, ``EX_TEMPFAIL``) or, after Ctrl-C,
:data:`~classification.foundation.errors.INTERRUPTED_EXIT` (130; a second Ctrl-C raises ``KeyboardInterrupt``; under
torchrun Ctrl-C is left to torchrun). ``--resume auto`` then trains the unfinished epoch from a copy of the training loader that leaves out, by index, the
batches already trained (:func:`skipping_loader`; epoch-based loops, iteration-based ones skip them themselves). Usage with slurm / torchrun: docs/clusters.md, "Preemption and requeue".
"""
from __future__ import annotations

import itertools
import os
import os.path as osp
import signal
import sys
import threading
from typing import Sequence

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_reduce, barrier, get_world_size, is_distributed
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from classification.engine.distributed import release_loader_workers
from classification.foundation.atomic import atomic_write_text
from classification.foundation.errors import INTERRUPTED_EXIT

PREEMPTED_EXIT_CODE = 75  # os.EX_TEMPFAIL
CHECKPOINT_NAME = "preempted.pth"
_SKIP_INFO = "preemption/skip_batches"  # message-hub key: where the unfinished epoch stood when preempted


def cpu_group():
    """A process group of every rank whose collectives run on the host (gloo): None (the default group) when the
    default group already is gloo or there is one rank, else a new gloo group. Every rank must call it, in the same
    order (``torch.distributed.new_group``)."""
    if not is_distributed() or get_world_size() < 2 or torch_dist.get_backend() == "gloo":
        return None
    return torch_dist.new_group(backend="gloo")


class TrainingPreempted(SystemExit):
    """Raised on every rank after the preemption checkpoint is written; exits with :data:`PREEMPTED_EXIT_CODE`
    (:data:`~classification.foundation.errors.INTERRUPTED_EXIT` for a Ctrl-C)."""

    def __init__(self, signame: str, iteration: int):
        super().__init__(INTERRUPTED_EXIT if signame == "SIGINT" else PREEMPTED_EXIT_CODE)
        self.signame, self.iteration = signame, iteration

    def __str__(self) -> str:
        cause = "interrupted by Ctrl-C (SIGINT)" if self.signame == "SIGINT" else f"preempted by {self.signame}"
        return (f"{cause} after iteration {self.iteration}: exit status {self.code}; continue by running the same "
                f"command with --resume auto")


class SkipFirstBatches:
    """Batch sampler: the batches of ``batch_sampler`` without the first ``skip``; other attributes (``sampler``,
    ``batch_size``) are the wrapped sampler's. ``len()`` is the number of batches it yields."""

    def __init__(self, batch_sampler, skip: int):
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return len(self.batch_sampler) - self.skip

    def __getattr__(self, name):  # only for attributes not set in __init__
        if name == "batch_sampler":
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)


def skipping_loader(loader: DataLoader, skip: int) -> DataLoader:
    """A new DataLoader with ``loader``'s dataset, workers, collation, seeding and pinning whose batches are those of
    ``loader``'s batch sampler without the first ``skip`` (:class:`SkipFirstBatches`); ``loader`` is left as it is.
    ``set_epoch`` reaches the shared sampler through ``batch_sampler.sampler``, as mmengine's DistSamplerSeedHook
    looks for it."""
    return DataLoader(loader.dataset, batch_sampler=SkipFirstBatches(loader.batch_sampler, skip),
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                      prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers,
                      pin_memory_device=loader.pin_memory_device, in_order=loader.in_order)


def _signal_number(name) -> signal.Signals:
    try:
        return signal.Signals[name] if isinstance(name, str) else signal.Signals(name)
    except (KeyError, ValueError):
        raise ValueError(f"PreemptionHook: unknown signal {name!r} (use names such as 'SIGTERM', 'SIGUSR1')") from None


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stops training cleanly on a preemption signal (see the module docstring).

    Args:
        signals: names (or numbers) of the signals that mean "stop cleanly"; an empty list disables the hook. SIGINT
            (Ctrl-C) is handled in single-process runs only.
    """

    priority = "LOWEST"  # after every other after_train_iter hook: the iteration is complete when we save

    def __init__(self, signals: Sequence = ("SIGTERM", "SIGUSR1", "SIGINT")):
        self.signals = [_signal_number(s) for s in signals]
        self.received: signal.Signals | None = None
        self._previous = {}
        self._full: DataLoader | None = None  # the loop's own loader while a skipping copy trains the resumed epoch
        self._group = None  # where the flags are reduced (cpu_group)
        self._pid = None  # the training process (loader workers inherit the handler)

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:  # a second Ctrl-C: stop at once
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        if signum == signal.SIGINT and os.getpid() == self._pid:
            print("\nCtrl-C: stopping after this iteration and writing a checkpoint (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        self.received = signal.Signals(signum)

    # ------------------------------------------------------------------ install / restore
    def before_train(self, runner) -> None:
        signals = [s for s in self.signals if s != signal.SIGINT or get_world_size() == 1]
        if signals and threading.current_thread() is not threading.main_thread():
            runner.logger.warning("PreemptionHook: training runs outside the main thread, where Python cannot "
                                  "install signal handlers; preemption signals keep their default action")
        else:
            self._pid = os.getpid()
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        if self.signals and self._group is None:
            self._group = cpu_group()
        self._resume_mid_epoch(runner)

    def after_train(self, runner) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    # ------------------------------------------------------------------ resume
    def _resume_mid_epoch(self, runner) -> None:
        """After resuming from a preemption checkpoint of an epoch-based loop, leave out the already trained
        batches of its unfinished epoch."""
        info = runner.message_hub.get_info(_SKIP_INFO)
        if not info or info["iter"] != runner.iter or not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        loader = runner.train_loop.dataloader
        if info["epoch_batches"] != len(loader):
            raise ValueError(
                f"the preemption checkpoint was written with {info['epoch_batches']} batches per epoch, this run has "
                f"{len(loader)}: resume a preempted run with the same number of processes, batch size and dataset")
        if loader.batch_sampler is None:
            raise ValueError("PreemptionHook resumes mid-epoch through the data loader's batch_sampler; this loader "
                             "has none (batch_size=None)")
        self._full = loader
        runner.train_loop.dataloader = skipping_loader(loader, info["batches_done"])  # this epoch only
        runner.logger.info(f"resuming after preemption: leaving out the {info['batches_done']} batches of epoch "
                           f"{runner.epoch + 1} already trained")

    def after_train_epoch(self, runner) -> None:
        if self._full is not None:
            release_loader_workers(runner.train_loop.dataloader)
            runner.train_loop.dataloader, self._full = self._full, None
            runner.message_hub.update_info(_SKIP_INFO, None)

    # ------------------------------------------------------------------ stop
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.signals:
            return
        flag = torch.tensor([0 if self.received is None else int(self.received)], dtype=torch.int64)
        all_reduce(flag, op="max", group=self._group)  # every rank learns whether any rank was signalled
        if int(flag) == 0:
            return
        signame = signal.Signals(int(flag)).name
        done = runner.iter + 1  # the loop counts this iteration after the hooks
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            epoch_batches = len(self._full or runner.train_loop.dataloader)
            runner.message_hub.update_info(_SKIP_INFO, dict(iter=done, epoch_batches=epoch_batches,
                                                            batches_done=done - runner.epoch * epoch_batches))
        path = osp.join(runner.work_dir, CHECKPOINT_NAME)
        runner.save_checkpoint(runner.work_dir, CHECKPOINT_NAME, meta=dict(epoch=runner.epoch, iter=done),
                               backend_args=dict(backend="atomic_local"))
        if runner.rank == 0:
            atomic_write_text(osp.join(runner.work_dir, "last_checkpoint"), path)
        barrier()  # no rank leaves before the checkpoint is complete
        self._restore_handlers()
        stop = TrainingPreempted(signame, done)
        runner.logger.warning(f"{stop}; checkpoint: {path}")
        raise stop


def add_preemption_hook(cfg) -> None:
    """Enable :class:`PreemptionHook` (default signals) in a training config unless it already configures one;
    ``custom_hooks=[dict(type='PreemptionHook', signals=[])]`` turns it off."""
    hooks = list(cfg.get("custom_hooks") or [])
    if not any(h.get("type") in ("PreemptionHook", PreemptionHook) for h in hooks):
        hooks.append(dict(type="PreemptionHook"))
    cfg.custom_hooks = hooks


__all__ = ["PREEMPTED_EXIT_CODE", "PreemptionHook", "SkipFirstBatches", "TrainingPreempted", "add_preemption_hook",
           "skipping_loader"]

"""Hooks: a training-curve PNG (loss, lr, validation top-1) and a progress bar for interactive runs."""
from __future__ import annotations

import os.path as osp
import sys

import torch

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def _scalar(value) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


@HOOKS.register_module()
class TrainingCurveHook(Hook):
    """Records loss and lr every ``interval`` iterations and the validation metric after each evaluation;
    writes ``<work_dir>/curve.png`` (and refreshes it after each evaluation) — a run that dies still has one.
    A resumed run plots the iterations since it resumed."""

    priority = "LOW"

    def __init__(self, interval: int = 10, metric: str = "top1", filename: str = "curve.png"):
        self.interval, self.metric, self.filename = interval, metric, filename
        self.loss, self.lr, self.val = [], [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        first = batch_idx == 0 and runner.epoch == 0
        if (first or self.every_n_train_iters(runner, self.interval)) and outputs is not None and "loss" in outputs:
            it = runner.iter + 1
            self.loss.append((it, _scalar(outputs["loss"])))
            self.lr.append((it, float(runner.optim_wrapper.get_lr()["lr"][0])))

    def after_val_epoch(self, runner, metrics=None):
        if metrics and self.metric in metrics:
            self.val.append((runner.iter, float(metrics[self.metric])))
        self._plot(runner)

    def after_run(self, runner):
        self._plot(runner)

    @master_only
    def _plot(self, runner):
        if not self.loss:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        panels = [("training loss", self.loss), ("learning rate", self.lr), (f"val {self.metric}", self.val)]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
        for ax, (title, points) in zip(axes, panels):
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(points) < 30 else None)
            ax.set_title(title)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(osp.join(runner.work_dir, self.filename), dpi=90)
        plt.close(fig)


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A tqdm bar over training iterations (rank 0, stderr) with the current loss."""

    priority = "VERY_LOW"

    def before_train(self, runner):
        from tqdm import tqdm
        self.bar = tqdm(total=runner.max_iters, initial=runner.iter, desc="train", unit="it", file=sys.stderr, mininterval=2.0,
                        dynamic_ncols=True, disable=runner.rank != 0)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.bar.update(1)
        if outputs is not None and "loss" in outputs and self.every_n_train_iters(runner, 10):
            self.bar.set_postfix(loss=f"{_scalar(outputs['loss']):.3f}", epoch=runner.epoch + 1)

    def after_train(self, runner):
        self.bar.close()


@HOOKS.register_module()
class CorruptSampleHook(Hook):
    """Logs, at the end of every training epoch, how many corrupt images the dataset skipped (``skip_corrupt=True``),
    per rank."""

    def after_train_epoch(self, runner):
        pop = getattr(runner.train_dataloader.dataset, "pop_skipped", None)
        skipped = pop() if pop is not None else 0
        if skipped:
            runner.logger.warning(f"rank {runner.rank}: skipped {skipped} corrupt training images in epoch "
                                  f"{runner.epoch + 1} (see the warnings above for the files)")


@HOOKS.register_module()
class AmpSkippedStepsHook(Hook):
    """Counts the optimiser steps that the fp16 loss scaler skipped (its scale dropped: non-finite gradients, the
    step was not taken) and logs the running total as ``amp_skipped_steps``. No-op without a loss scaler."""

    def __init__(self):
        self.skipped, self._scale = 0, None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        scaler = getattr(runner.optim_wrapper, "loss_scaler", None)
        self._scale = scaler.get_scale() if scaler is not None else None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._scale is None:
            return
        if runner.optim_wrapper.loss_scaler.get_scale() < self._scale:
            self.skipped += 1
        runner.message_hub.update_scalar("train/amp_skipped_steps", self.skipped)

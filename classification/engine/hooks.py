"""Hooks (mmengine's HOOKS): ``TrainingCurveHook`` (a training-curve PNG + JSON — loss, lr, validation top-1,
label-policy statistics — that continues across a resume), ``RunSummaryHook`` (a start-up summary of the run),
``ProgressBarHook`` (interactive runs), ``CorruptSampleHook`` and ``AmpSkippedStepsHook`` (counts of skipped data and
fp16 steps) and ``SyncFreeRuntimeInfoHook``: log values read on the host only when a reader needs them, and the reader
of what :class:`~classification.engine.optim_wrapper.GuardedOptimWrapper` defers (its gradient norm and non-finite
flags: FloatingPointError naming the failed iteration)."""
from __future__ import annotations

import json
import os.path as osp
import sys

import torch

from mmengine.dist import master_only
from mmengine.hooks import Hook, LoggerHook, RuntimeInfoHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from classification.foundation.atomic import atomic_write, atomic_write_text
from classification.foundation.checkpoints import latest_checkpoint
from classification.engine.optim_wrapper import DeferredReadback, GuardedOptimWrapper


def _current(runner, key: str):
    """The latest value of the training scalar ``train/<key>`` in the message hub (a host number), None if none yet."""
    history = runner.message_hub.log_scalars.get(f"train/{key}")
    return float(history.current()) if history is not None and len(history.data[0]) else None


@HOOKS.register_module()
class TrainingCurveHook(Hook):
    """Records loss and lr every ``interval`` iterations, the window average over the last ``interval`` iterations
    of each logged statistic that the model lists in its ``curve_stats`` (the classifier: the label-policy statistics,
    ``mixpro_core.POLICY_STATS``; none for a model without the attribute), and the validation metric after each
    evaluation; writes ``<work_dir>/curve.png`` and ``curve.json`` (``{series: [[iteration, value], ...]}``) and
    refreshes them after each evaluation — a run that dies still has them.

    The series travel in every checkpoint (in the message hub, which mmengine saves and restores on a resume), so a
    resumed run continues the curve from the checkpoint's iteration, the points recorded after it being dropped."""

    priority = "LOW"
    HUB_KEY = "training_curve"

    def __init__(self, interval: int = 10, metric: str = "top1", filename: str = "curve.png"):
        self.interval, self.metric, self.filename = interval, metric, filename
        self.loss, self.lr, self.val = [], [], []
        self.policy = {}  # statistic → [(iteration, window mean)]

    def before_train(self, runner):
        saved = runner.message_hub.get_info(self.HUB_KEY)
        if saved is not None:  # a resume: the checkpoint's history (mmengine restored the hub)
            series = {k: [tuple(p) for p in v] for k, v in saved.items()}
            self.loss, self.lr = series.pop("loss", []), series.pop("lr", [])
            self.val, self.policy = series.pop(f"val_{self.metric}", []), series
        elif runner.iter > 0:
            runner.logger.warning(f"TrainingCurveHook: the checkpoint holds no curve history (written before curves "
                                  f"were checkpointed): {self.filename} starts at iteration {runner.iter}")
        self._publish(runner)

    def _publish(self, runner) -> None:
        """Put the series (the live lists) into the message hub, which every checkpoint saves."""
        runner.message_hub.update_info(self.HUB_KEY, self.series())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        first = batch_idx == 0 and runner.epoch == 0
        if (first or self.every_n_train_iters(runner, self.interval)) and outputs is not None and "loss" in outputs:
            it = runner.iter + 1
            self.loss.append((it, _current(runner, "loss")))
            self.lr.append((it, float(runner.optim_wrapper.get_lr()["lr"][0])))
            scalars = runner.message_hub.log_scalars
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            for key in getattr(model, "curve_stats", ()):
                history = scalars.get(f"train/{key}")
                if history is not None and len(history.data[0]):
                    self.policy.setdefault(key, []).append((it, float(history.mean(self.interval))))
            self._publish(runner)

    def after_val_epoch(self, runner, metrics=None):
        if metrics and self.metric in metrics:
            self.val.append((runner.iter, float(metrics[self.metric])))
        self._plot(runner)

    def after_run(self, runner):
        self._plot(runner)

    def series(self) -> dict:
        """Every recorded series: ``loss``, ``lr``, ``val_<metric>`` and the policy statistics."""
        return {"loss": self.loss, "lr": self.lr, f"val_{self.metric}": self.val, **self.policy}

    @master_only
    def _plot(self, runner):
        if not self.loss:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        path = osp.join(runner.work_dir, osp.splitext(self.filename)[0] + ".json")
        atomic_write_text(path, json.dumps({k: [list(p) for p in v] for k, v in self.series().items()}))
        panels = [("training loss", self.loss), ("learning rate", self.lr), (f"val {self.metric}", self.val)]
        panels += [(key, points) for key, points in self.policy.items()]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.4))
        for ax, (title, points) in zip(axes, panels):
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(points) < 30 else None)
            ax.set_title(title)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        atomic_write(osp.join(runner.work_dir, self.filename), lambda tmp: fig.savefig(tmp, dpi=90))
        plt.close(fig)


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Logs what runs, in a few lines before the first training (or test) iteration: the config and where its full
    text and the log file are, the model's size, the data, the device with its threads and loader workers, and where
    the run starts (``tools/train.py`` and ``tools/test.py`` add it)."""

    priority = "VERY_LOW"

    def before_train(self, runner):
        loop, loader = runner.train_loop, runner.train_dataloader
        length = (f"{loop.max_epochs} epochs × {len(loader)} iterations" if isinstance(loop, EpochBasedTrainLoop)
                  else f"{loop.max_iters} iterations")
        lines = self._head(runner) + [self._data("train", loader), f"schedule: {length}, {self._optimiser(runner)}"]
        if runner.val_loop is not None:
            lines.append(self._data("val", runner.val_dataloader))
        lines += [self._device(runner, loader), self._start(runner)]
        runner.logger.info("\n".join(lines))

    def before_test(self, runner):
        loader = runner.test_dataloader
        lines = self._head(runner) + [self._data("test", loader), self._device(runner, loader),
                                      f"checkpoint: {runner.cfg.get('load_from')}"]
        runner.logger.info("\n".join(lines))

    @staticmethod
    def _head(runner) -> list:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        backbone = getattr(model, "backbone", None)
        name = type(model).__name__ + (f" ({type(backbone).__name__})" if backbone is not None else "")
        dumped = osp.join(runner.work_dir, osp.basename(runner.cfg.filename)) if runner.cfg.filename else "-"
        return [f"config: {runner.cfg.filename}",
                f"work dir: {runner.work_dir} (full config: {dumped}; log: "
                f"{osp.join(runner.log_dir, runner.timestamp + '.log')})",
                f"model: {name}, {params / 1e6:.2f}M parameters ({trainable / 1e6:.2f}M trainable)"]

    @staticmethod
    def _data(split: str, loader) -> str:
        size = loader.batch_size or getattr(loader.batch_sampler, "batch_size", None)  # mmdet: a batch sampler's
        return (f"{split} data: {len(loader.dataset)} samples ({type(loader.dataset).__name__}), {len(loader)} batches "
                f"of {size} per process")

    @staticmethod
    def _optimiser(runner) -> str:
        wrapper = runner.optim_wrapper
        optimizer = getattr(wrapper, "optimizer", None)
        if optimizer is None:
            return type(wrapper).__name__
        precision = f" ({wrapper.cast_dtype})" if getattr(wrapper, "cast_dtype", None) is not None else ""
        group = optimizer.param_groups[0]
        return f"{type(optimizer).__name__} lr {group.get('initial_lr', group['lr']):.3g}{precision}"

    @staticmethod
    def _device(runner, loader) -> str:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        device = next(model.parameters()).device
        name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        return (f"device: {device}{name} × {runner.world_size} process(es), {torch.get_num_threads()} intra-op "
                f"threads, {loader.num_workers} loader workers")

    @staticmethod
    def _start(runner) -> str:
        if runner.iter > 0:
            source = runner.cfg.get("load_from") or latest_checkpoint(runner.work_dir)
            epoch = f"epoch {runner.epoch + 1}, " if isinstance(runner.train_loop, EpochBasedTrainLoop) else ""
            return f"start: resumed at {epoch}iteration {runner.iter} from {source}"
        if runner.cfg.get("load_from"):
            return f"start: iteration 0, weights from {runner.cfg.load_from}"
        return "start: iteration 0, the model's own initialisation"


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A tqdm bar over training iterations (rank 0, stderr) with the latest loss the message hub holds (with
    :class:`SyncFreeRuntimeInfoHook`, the loss of the last logging interval: the bar reads nothing from the device)."""

    priority = "VERY_LOW"

    def before_train(self, runner):
        from tqdm import tqdm
        self.bar = tqdm(total=runner.max_iters, initial=runner.iter, desc="train", unit="it", file=sys.stderr,
                        mininterval=2.0, dynamic_ncols=True, disable=runner.rank != 0)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.bar.update(1)
        if outputs is not None and "loss" in outputs and self.every_n_train_iters(runner, 10):
            loss = _current(runner, "loss")
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3f}", epoch=runner.epoch + 1)

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
    step was not taken) and logs the running total as ``amp_skipped_steps``, which continues across a resume. No-op
    without a loss scaler."""

    def __init__(self):
        self.skipped, self._scale = 0, None

    def before_train(self, runner):
        history = runner.message_hub.log_scalars.get("train/amp_skipped_steps")  # restored by a resume
        self.skipped = int(history.current()) if history is not None and len(history.data[0]) else 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        scaler = getattr(runner.optim_wrapper, "loss_scaler", None)
        self._scale = scaler.get_scale() if scaler is not None else None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._scale is None:
            return
        if runner.optim_wrapper.loss_scaler.get_scale() < self._scale:
            self.skipped += 1
        runner.message_hub.update_scalar("train/amp_skipped_steps", self.skipped)


@HOOKS.register_module()
class SyncFreeRuntimeInfoHook(RuntimeInfoHook):
    """mmengine's ``runtime_info`` hook without a host↔device synchronisation per iteration.

    mmengine's hook turns every log variable into a Python number after every iteration (``.item()``: the host waits
    for the device). This one copies them to pinned host memory asynchronously and writes them into the message hub,
    one value per iteration as before (so logged window averages are unchanged), only when a reader needs them: at
    the intervals of the LoggerHook and the TrainingCurveHook, the first iteration, the end of each epoch, before a
    checkpoint is saved and at the end of training.

    With a :class:`~classification.engine.optim_wrapper.GuardedOptimWrapper` it is the reader of what the wrapper
    defers (its config's ``defer=True``): the clipping norm of each update is logged as ``train/<grad_name>`` with the
    iteration's other values, and the wrapper checks its deferred non-finite flags after every iteration (without
    waiting) and all at the points above, so a non-finite loss stops the run with FloatingPointError before any
    checkpoint after it is written. Any other wrapper has no non-finite-loss guard: a warning says so.
    """

    priority = "VERY_HIGH"

    def __init__(self):
        super().__init__()
        self._logs, self._wrapper, self._intervals = DeferredReadback(), None, ()

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._intervals = tuple(sorted({h.interval for h in runner.hooks
                                        if isinstance(h, (LoggerHook, TrainingCurveHook))}))
        if isinstance(runner.optim_wrapper, GuardedOptimWrapper):
            self._wrapper = runner.optim_wrapper
        else:
            runner.logger.warning(f"{type(runner.optim_wrapper).__name__} has no non-finite-loss guard: use "
                                  f"optim_wrapper.type='GuardedOptimWrapper'")

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        tensors = {}
        for key, value in (outputs or {}).items():
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().reshape(()).float()
            else:
                runner.message_hub.update_scalar(f"train/{key}", value)
        if self._wrapper is not None:
            for key, norm in self._wrapper.pop_grad_norm().items():  # set by this iteration's update
                tensors[key] = norm.detach().reshape(()).float()
        if tensors:
            self._logs.push(list(tensors), torch.stack(list(tensors.values())))
        if self._wrapper is not None:
            self._wrapper.check(wait=False)
        it, inner = runner.iter + 1, batch_idx + 1
        if (runner.iter == 0 or any(it % i == 0 or inner % i == 0 for i in self._intervals)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            self._flush(runner)

    def _flush(self, runner) -> None:
        if self._wrapper is not None:
            self._wrapper.check(wait=True)
        for keys, values in self._logs.pop(wait=True):
            for key, value in zip(keys, values):
                runner.message_hub.update_scalar(f"train/{key}", value)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._flush(runner)

    def after_train_epoch(self, runner) -> None:
        self._flush(runner)

    def after_train(self, runner) -> None:
        self._flush(runner)
        self._wrapper = None

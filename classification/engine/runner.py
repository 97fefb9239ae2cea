"""The Runner of every run (:func:`classification.engine.lifecycle.run`): mmengine's, with checkpoints loaded strictly
and a console a person can read.

- ``load_from`` and ``resume`` go through :func:`classification.foundation.checkpoint_sources.load_source_strict`
  (keys and shapes must fit; ``load_from_partial`` key patterns excuse keys of a ``load_from``, never of a resume). The
  ``load_from`` (and ``tools/test.py``) of a model with a ``backbone_prefix`` (the classifier's ``backbone.``) also
  reads bare classifier layouts (:mod:`classification.foundation.checkpoint_sources`) into the keys under that prefix.
  ``--resume auto`` finds its checkpoint with :func:`latest_checkpoint`; a resume reads and deletes only the work
  dir's own checkpoints (:meth:`MixProRunner.resume`).
- A data loader without a single batch is one line (:meth:`MixProRunner.build_dataloader`).
- The console leaves out what only a debugging reader needs (system environment, whole config, hook table, parameter
  group options) and known harmless upstream notices (:data:`CONSOLE_HIDDEN`); the log file
  ``<work_dir>/<timestamp>/<timestamp>.log`` keeps them; the config is written to ``<work_dir>/<config file name>``.
"""
from __future__ import annotations

import logging
import os.path as osp
import re

from mmengine.dist import get_world_size
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from classification.foundation.checkpoint_sources import (CheckpointSource, classifier_source, ema_note,
                                                         is_mmengine_ema, load_source_strict)
from classification.foundation.checkpoints import checkpoint_state, latest_checkpoint, own_checkpoint
from classification.foundation.errors import UserError

# message-hub entries of mmengine 0.10.7's CheckpointHook (hooks/checkpoint_hook.py) that it reads back after a
# resume: 'best_ckpt' (or 'best_ckpt_<metric>' with several metrics) names the best checkpoint, which
# _save_best_checkpoint deletes ("The previous best checkpoint ... is removed") when a better one comes. A resume
# restores them as saved, absolute paths into the folder that wrote them. ('last_ckpt' is written, never read.)
HUB_CHECKPOINT_PATHS = re.compile(r"best_ckpt(_.+)?")

# how the records left out of the console begin (mmengine 0.10.7: Runner._log_env, Runner.__init__,
# DefaultOptimWrapperConstructor.add_params)
CONSOLE_HIDDEN = (re.compile(r"\s*-+\s*System environment:"), re.compile(r"Config:\n"),
                  re.compile(r"Hooks will be executed in the following order"), re.compile(r"paramwise_options -- "),
                  # known harmless upstream deprecation notices: mmengine 0.10.7's CheckpointHook.before_train builds
                  # a FileClient it does not use ("to avoid breaking backward compatibility ... until the release of
                  # MMEngine 1.0", mmengine/hooks/checkpoint_hook.py), and FileClient and its HardDiskBackend log
                  # their own deprecation when built (mmengine/fileio/file_client.py) — in every run
                  re.compile(r'"FileClient" will be deprecated in future\. Please use io functions in '),
                  re.compile(r'"HardDiskBackend" is the alias of "LocalBackend" and the former will be deprecated'),
                  # mmseg 1.2.2's IoUMetric sets no default_prefix, which mmengine's BaseMetric warns about when built
                  re.compile(r"The prefix is not set in metric class IoUMetric\.$"))


class HideStartupDetails(logging.Filter):
    """Console filter: drops the records of :data:`CONSOLE_HIDDEN` (the log file keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.match(message) for p in CONSOLE_HIDDEN)


@RUNNERS.register_module()
class MixProRunner(Runner):
    """mmengine's Runner with strict checkpoint loading and a short console start-up (see the module docstring)."""

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        logger = super().build_logger(log_level, log_file, **kwargs)
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                if not any(isinstance(f, HideStartupDetails) for f in handler.filters):
                    handler.addFilter(HideStartupDetails())
        return logger

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed: bool = False):
        """mmengine's; a loader without a single batch (a dataset smaller than the global batch with
        ``drop_last=True``) is a UserError naming the sizes, before mmengine fails on an epoch of 0 iterations."""
        built = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        try:
            empty = len(built) == 0
        except TypeError:  # an iterable dataset without a length
            empty = False
        if empty:
            dataset = built.dataset
            size = built.batch_size or getattr(built.batch_sampler, "batch_size", None)
            where = getattr(dataset, "root", None)
            raise UserError(f"the data loader of {type(dataset).__name__}{f' ({where})' if where else ''} has no "
                            f"batch: {len(dataset)} samples, fewer than one batch of {size} per process × "
                            f"{get_world_size()} process(es) with drop_last=True; lower its batch_size or add samples")
        return built

    def load_or_resume(self) -> None:
        """mmengine's, with the checkpoint of ``resume=True`` (no ``load_from``) found by :func:`latest_checkpoint`;
        a work dir without one trains from the start, as mmengine does."""
        if self._resume and self._load_from is None and not self._has_loaded:
            self._load_from = latest_checkpoint(self.work_dir)
            self._resume = self._load_from is not None
            print_log(f"resume: {self._load_from or 'no checkpoint in ' + self.work_dir + ', training from the start'}",
                      logger="current")
        super().load_or_resume()

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's, then the checkpoint paths the restored message hub holds (:data:`HUB_CHECKPOINT_PATHS`) made
        this work dir's: a checkpoint of another folder (a copied work dir, ``--resume`` of another run's file) names
        that folder's best checkpoint, which CheckpointHook would delete when this run finds a better one; such a
        name becomes the same file name here, or is dropped when this folder has none
        (:func:`classification.foundation.checkpoints.own_checkpoint`). "Here" is the CheckpointHook's folder: the work
        dir, or ``<out_dir>/<work dir name>`` when the hook sets ``out_dir`` (a remote one is left alone)."""
        super().resume(filename, *args, **kwargs)
        folder = self.work_dir
        hook = next((h for h in self.hooks if isinstance(h, CheckpointHook)), None)
        if hook is not None and hook.out_dir not in (None, self.work_dir):
            if "://" in str(hook.out_dir):
                return
            folder = osp.join(hook.out_dir, osp.basename(self.work_dir.rstrip(osp.sep)))
        info = self.message_hub.runtime_info
        for key in [k for k in info if HUB_CHECKPOINT_PATHS.fullmatch(k)]:
            if isinstance(info[key], str):
                own = own_checkpoint(info[key], folder, f"{filename}: message hub '{key}'")
                if own is None:
                    del info[key]
                else:
                    info[key] = own

    def load_checkpoint(self, filename: str, map_location="cpu", strict: bool = True,
                        revise_keys=((r"^module\.", ""),)):
        """mmengine's ``load_checkpoint`` (``after_load_checkpoint`` hooks, then the weights), always strict: see
        :func:`classification.foundation.checkpoint_sources.load_source_strict`; ``strict`` is ignored.
        ``load_from_partial`` applies to ``load_from``, never to a resume; ``load_from_ema`` (``tools/test.py --ema``)
        reads a ``load_from``'s EMA weights (:mod:`classification.foundation.checkpoint_sources`), and a ``load_from``
        whose EMA copy goes unused says so in one line."""
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):  # as mmengine's load_state_dict unwraps
            model = model.module
        state = checkpoint_state(checkpoint, filename, revise_keys)
        partial = () if self._resume else list(self.cfg.get("load_from_partial") or ())
        ema = not self._resume and bool(self.cfg.get("load_from_ema"))
        # the model's contract: a model that reads bare classifier checkpoints into its backbone names that key prefix
        backbone = getattr(model, "backbone_prefix", "")
        bare = bool(backbone) and not any(k.startswith(backbone) for k in state)
        prefix = ""
        if not self._resume and ((ema and not is_mmengine_ema(checkpoint)) or bare):
            # a bare classifier (timm, a release) or an EMA copy: its tensors are the backbone's; the wrapper's own
            # state (mix step, method) starts from its initial values
            source = classifier_source(checkpoint, filename, ema)
            print_log(f"{filename}: {source.layout}" + ("; read into the classifier's backbone" if backbone else ""),
                      logger="current")
            if backbone:
                prefix = backbone
                partial += [k for k in model.state_dict() if not k.startswith(backbone)]
        else:  # the whole model's state (our checkpoint, a resume)
            note = None if self._resume else ema_note(checkpoint, filename, ema)
            source = CheckpointSource(filename, "model state", state, notes=[note] if note else [])
        load_source_strict(model, source, partial, prefix)
        self._has_loaded = True
        return checkpoint

"""Runs on the composite set (:mod:`classification.transfer.downstream_data.composite`), shared by the demo
(:mod:`classification.experiments.demo`) and the downstream set (:mod:`classification.experiments.reproduction.downstream`):
what every process of such a run does first, and a segmentation / detection config pointed at the set."""
from __future__ import annotations

import os.path as osp
from contextlib import contextmanager
from typing import Iterator

from classification.engine.launch import filter_upstream_warnings, upstream_warnings_ignored
from classification.foundation.checkpoints import install_safe_checkpoint_loading


@contextmanager
def composite_run() -> Iterator[None]:
    """Within: a composite run in this process (its stages with one job, its local and thread stages) — weights-only
    checkpoint loading, the known harmless upstream warnings ignored; on exit the warning filters are those of before
    (:func:`classification.engine.launch.upstream_warnings_ignored`)."""
    install_safe_checkpoint_loading()
    with upstream_warnings_ignored():
        yield


def prepare_worker() -> None:
    """The stage scheduler's worker initializer for a composite run: as :func:`composite_run`, process-wide, in a
    spawned interpreter that runs one stage and exits (the filters end with the run they serve)."""
    install_safe_checkpoint_loading()
    filter_upstream_warnings()


def on_composite(cfg, data_root: str, task: str, quick: bool) -> None:
    """Point a segmentation / detection config at the composite set in ``data_root`` (its test evaluator too), without
    a validation loop (evaluated once, after training); ``quick``: batch 2, 4 iterations or 1 epoch."""
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
    if task == "detection":
        cfg.test_evaluator.ann_file = osp.join(data_root, "annotations", "instances_val.json")
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    if quick:
        cfg.train_dataloader.batch_size = 2
        if task == "segmentation":
            cfg.train_cfg.max_iters = 4
            cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False)]
        else:
            cfg.train_cfg.max_epochs = 1

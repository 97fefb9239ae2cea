"""Data-loader worker counts that leave CPU cores to the training process.

Each loader worker is one busy process. If the workers take every core, the main process — which collates, pins
and copies batches and launches the GPU kernels of every step — waits for a core, and loading and compute stop
overlapping. :func:`default_num_workers` caps a configured count at the cores this process may use (its share of
``os.sched_getaffinity`` when ``LOCAL_WORLD_SIZE`` ranks share the host) minus :data:`RESERVED_CORES`, never below
one worker; a count of 0 (load in the main process) is kept. ``tools/train.py`` and ``tools/test.py`` apply it to
every loader of the config (:func:`apply_default_num_workers`), e.g. 16 cores, one GPU: at most 14 workers.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

from classification.runtime import usable_cores

__all__ = ["RESERVED_CORES", "default_num_workers", "apply_default_num_workers"]

RESERVED_CORES = 2  # the training process and its pin-memory thread
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def default_num_workers(configured: int, cores: Optional[int] = None, local_processes: Optional[int] = None) -> int:
    """``min(configured, max(1, cores // local_processes − RESERVED_CORES))``; 0 stays 0.

    ``cores`` defaults to the usable cores, ``local_processes`` to ``LOCAL_WORLD_SIZE`` (1 when unset)."""
    if configured < 0:
        raise ValueError(f"num_workers must be >= 0, got {configured}")
    if configured == 0:
        return 0
    cores = usable_cores() if cores is None else cores
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if local_processes is None else local_processes
    return min(configured, max(1, cores // max(1, local) - RESERVED_CORES))


def apply_default_num_workers(cfg, cores: Optional[int] = None,
                              local_processes: Optional[int] = None) -> Dict[str, Tuple[int, int]]:
    """Cap ``num_workers`` of the config's train/val/test loaders in place (:func:`default_num_workers`); returns
    ``{loader: (configured, used)}`` for the loaders it changed. A loader left with no worker stops being
    ``persistent_workers`` (torch refuses that combination)."""
    changed = {}
    for name in LOADERS:
        loader = cfg.get(name)
        if not loader or "num_workers" not in loader:
            continue
        configured = int(loader["num_workers"])
        used = default_num_workers(configured, cores, local_processes)
        if used != configured:
            loader["num_workers"] = used
            changed[name] = (configured, used)
        if used == 0 and loader.get("persistent_workers"):
            loader["persistent_workers"] = False
    return changed

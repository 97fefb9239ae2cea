"""Distributed runs on any host: mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
``device_ids=[local_rank]``; on a host without CUDA we initialise the gloo process group first (the Runner then skips
its own init) and wrap with ``device_ids=None`` (:func:`classification.foundation.host.adapt_config_to_host`). Also the
clean end of a run: data-loader workers and the process group shut down while the interpreter is fully alive.
"""
from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist


def init_distributed(launcher: str) -> None:
    """Initialise the process group before the Runner: gloo on a host without CUDA, else leave it to mmengine."""
    if launcher == "none" or dist.is_initialized() or torch.cuda.is_available():
        return
    if launcher == "slurm":
        os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
        os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    dist.init_process_group(backend="gloo")


def release_dataloader_workers(runner) -> None:
    """Stop the persistent data-loader workers of ``runner``'s built loops now, while their queues are alive.

    The Runner sits in reference cycles, so its loaders are freed by a cyclic collection. There the queues' weakref
    finalisers (``multiprocessing.util.Finalize``: stop the feeder thread) run before the loader iterator's
    ``__del__``, whose shutdown message then never reaches the workers: each join times out after
    ``MP_STATUS_CHECK_INTERVAL`` (5 s) and the worker is terminated. Dropping the iterator here lets reference
    counting run ``__del__`` at once, a clean shutdown. Call it before dropping the Runner."""
    for name in ("_train_loop", "_val_loop", "_test_loop"):
        release_loader_workers(getattr(getattr(runner, name, None), "dataloader", None))  # unbuilt loops: dicts


def release_loader_workers(loader) -> None:
    """Shut one DataLoader's persistent workers down now (:func:`release_dataloader_workers`); a wrapper with the
    DataLoader in ``.loader`` (timm's PrefetchLoader) is unwrapped, anything else is left alone.

    The one place that touches a private attribute of torch's DataLoader: torch 2.14 has no public way to stop
    persistent workers. The loader keeps its live iterator in ``_iterator`` (reused across epochs), whose ``__del__``
    calls the also private ``_shutdown_workers``; dropping that reference runs it. The loader stays usable: its next
    ``iter()`` starts new workers."""
    loader = getattr(loader, "loader", loader)
    if isinstance(loader, torch.utils.data.DataLoader) and getattr(loader, "_iterator", None) is not None:
        loader._iterator = None


def finish_distributed() -> None:
    """Tear the process group down while the interpreter is fully alive.

    A gloo group freed during interpreter shutdown ends the rank with std::terminate (SIGABRT) after a good run.
    ``destroy_process_group`` alone is not enough: mmengine's Runner sits in reference cycles, so its DDP
    reducer (which holds the group) outlives ``del runner`` until a cyclic collection, possibly at shutdown.
    Callers drop their Runner first; the collection here frees it before the group is destroyed."""
    if dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()


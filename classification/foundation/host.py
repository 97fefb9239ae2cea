"""The host a run is on: repository root (:data:`ROOT`), torch threads, loader workers, CPU-only DDP, the machine.

:func:`configure_threads` keeps the runnable threads at most the usable cores (:func:`usable_cores`:
``os.sched_getaffinity``, which honours taskset, cpusets and container pinning): their share among the
``LOCAL_WORLD_SIZE`` ranks of the host minus the training loader's workers, at least one. It leaves OpenMP's wait
policy alone (on a shared machine export ``OMP_WAIT_POLICY=PASSIVE``: docs/training.md, "Training and evaluation"; measured
in docs/benchmarks.md, "OpenMP wait policy"). :func:`default_num_workers` caps a configured worker count at that
share minus :data:`RESERVED_CORES`, so the main process keeps a core to collate, copy and launch kernels (16 cores,
one GPU: at most 14 workers), never below one, 0 kept; ``tools/train.py`` and ``tools/test.py`` apply it to every
loader (:func:`apply_default_num_workers`). :func:`environment`: mmengine's ``collect_env`` plus the platform, the
CPU model (:func:`cpu_name`) and the CPU count, for the reports of the benchmarks and the reproduction.
"""
from __future__ import annotations

import os
import os.path as osp
import platform
from typing import Dict, Optional, Tuple

import torch

__all__ = ["ROOT", "usable_cores", "default_num_threads", "configure_threads", "RESERVED_CORES", "default_num_workers",
           "apply_default_num_workers", "adapt_config_to_host", "cpu_name", "environment"]

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository (configs/ is read from it)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the thread counts torch reads at start-up


# ----------------------------------------------------------------------------------------------------- threads
def usable_cores() -> int:
    """The CPU cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where unsupported)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_threads(num_workers: int = 0, cores: Optional[int] = None, local_processes: int = 1) -> int:
    """``max(1, cores // local_processes − num_workers)``: the cores of this process's share that its loader
    workers (one busy process each) leave free."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, local_processes) - max(0, num_workers))


def configure_threads(cfg=None, num_threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads for a run of ``cfg`` and return the number in effect.

    Precedence: ``num_threads`` argument, then ``cfg.env_cfg.num_threads``; if neither is given and the user set
    ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` (which torch already follows), torch is left as it is; otherwise
    :func:`default_num_threads` with the training loader's ``num_workers`` and ``LOCAL_WORLD_SIZE`` processes.
    Evaluation loaders are not counted: their workers run while training waits.
    """
    explicit = num_threads
    if explicit is None and cfg is not None:
        explicit = (cfg.get("env_cfg") or {}).get("num_threads")
    if explicit is None and any(os.environ.get(v) for v in THREAD_VARIABLES):
        return torch.get_num_threads()
    if explicit is None:
        loader = (cfg.get("train_dataloader") if cfg is not None else None) or {}
        explicit = default_num_threads(int(loader.get("num_workers", 0) or 0),
                                       local_processes=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    if int(explicit) < 1:
        raise ValueError(f"env_cfg.num_threads / num_threads must be a positive integer, got {explicit}")
    torch.set_num_threads(int(explicit))
    return torch.get_num_threads()


# ------------------------------------------------------------------------------------------------ loader workers
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


def adapt_config_to_host(cfg, launcher: str) -> None:
    """CPU-only distributed run: DDP without device_ids (mmengine's default wrapper assumes a GPU per rank)."""
    if launcher != "none" and not torch.cuda.is_available():
        wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
        wrapper["device_ids"] = None
        cfg.model_wrapper_cfg = wrapper


# ------------------------------------------------------------------------------------------------------ machine
def cpu_name() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor` or the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """``platform, cpu, cpu_count, python, torch, timm, mmengine, gpu`` (``gpu``: the name of CUDA device 0, or
    None)."""
    import timm
    from mmengine.utils.dl_utils import collect_env

    env = collect_env()
    gpu = next((name for key, name in env.items() if key.startswith("GPU ")), None)
    return dict(platform=platform.platform(), cpu=cpu_name(), cpu_count=os.cpu_count(),
                python=platform.python_version(), torch=env["PyTorch"], timm=timm.__version__,
                mmengine=env["MMEngine"], gpu=gpu)

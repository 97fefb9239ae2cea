"""Process settings that fit the machine: torch's intra-op thread count (and advice on OpenMP's wait policy).

torch starts one intra-op (OpenMP) thread per core it detects, and every DataLoader worker is one more busy
process; on a 2-core machine the trainer's 2 threads plus 2 workers oversubscribe the cores (threads spinning
and being descheduled: half the CPU time in the kernel). :func:`configure_threads` keeps the runnable threads at
most the usable cores: the cores this process may run on (``os.sched_getaffinity``, which honours taskset,
cgroups cpusets and container CPU pinning), shared among the processes of this host (``LOCAL_WORLD_SIZE`` ranks),
minus the persistent training-loader workers, at least one.

Other processes on the machine (a second run, a compiler, the evaluation of another job) oversubscribe the cores
all the same, and GNU OpenMP's default wait policy (spin before sleeping) turns that into a collapse: a thread
spins at every parallel region's barrier while its partner waits for a core. On a 2-core machine shared by other
busy processes, the tiny-ViT Fashion-MNIST step took 1.2–1.5 s with 2 spinning threads against 0.19–0.21 s with
``OMP_WAIT_POLICY=PASSIVE`` (1 thread: 0.16–0.20 s). Importing the package does not set it (that would change the
whole process): on a shared machine, export ``OMP_WAIT_POLICY=PASSIVE`` before starting a run (the README says so).
"""
from __future__ import annotations

import os
from typing import Optional

__all__ = ["usable_cores", "default_num_threads", "configure_threads"]

USER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


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
    import torch
    explicit = num_threads
    if explicit is None and cfg is not None:
        explicit = (cfg.get("env_cfg") or {}).get("num_threads")
    if explicit is None and any(os.environ.get(v) for v in USER_THREAD_VARIABLES):
        return torch.get_num_threads()
    if explicit is None:
        loader = (cfg.get("train_dataloader") if cfg is not None else None) or {}
        explicit = default_num_threads(int(loader.get("num_workers", 0) or 0),
                                       local_processes=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    if int(explicit) < 1:
        raise ValueError(f"env_cfg.num_threads / num_threads must be a positive integer, got {explicit}")
    torch.set_num_threads(int(explicit))
    return torch.get_num_threads()

"""The machine and software stack a measurement ran on, for the reports of the benchmarks and the reproduction.

Versions and GPU names come from mmengine's :func:`mmengine.utils.dl_utils.collect_env`; the platform string, the CPU
model (``/proc/cpuinfo``) and the CPU count, which it does not report, are added here.
"""
from __future__ import annotations

import os
import platform


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

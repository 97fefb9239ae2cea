"""A training job's recipe at any GPU count: the paper's total batch and learning rate, kept by the per-GPU batch and
mmengine's gradient accumulation (``optim_wrapper.accumulative_counts``), never by changing either silently.

The paper's setting is in each config's name, ``..._{N}xb{B}-...`` (N GPUs × B images; e.g. ``8xb128``: 1024), and
its ``train_dataloader.batch_size`` is B (checked). At G GPUs a job trains on g = the largest divisor of N·B not above
G GPUs (ADE20K's 8 images cannot spread over 16 GPUs: such a job takes 8 of them), with b = the largest divisor of
N·B / g not above B images per GPU (the per-GPU memory the recipe was run with) and a = N·B / (g·b) accumulation
steps. The lr is the one the config gives at N·B: its optimiser lr, times N·B / ``auto_scale_lr.base_batch_size`` where
auto-scaling is on — set explicitly, with auto-scaling off (mmengine's scaling would count b·g, not b·g·a). With
a > 1, what counts iterations is stretched a times (iteration loops, their validation and checkpoint intervals,
iteration-based lr schedules) so that every optimiser step sees the lr it has in the paper's setting; epoch-based
schedules follow the loader's length by themselves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Tuple

SETTING = re.compile(r"_(\d+)xb(\d+)-")


@dataclass(frozen=True)
class Recipe:
    """``total_batch`` = ``gpus`` × ``per_gpu`` × ``accum``; ``lr``: the optimiser's base learning rate."""

    total_batch: int
    gpus: int
    per_gpu: int
    accum: int
    lr: float

    def describe(self) -> str:
        return (f"total batch {self.total_batch} = {self.gpus} GPU(s) x {self.per_gpu} x {self.accum} "
                f"accumulation step(s), lr {self.lr:g}")


def paper_setting(stem: str) -> Tuple[int, int]:
    """(GPUs, images per GPU) of the config name ``stem`` (``..._8xb2-...``: (8, 2)); ValueError without one."""
    m = SETTING.search(stem)
    if not m:
        raise ValueError(f"{stem}: the config name gives no NxbB setting (GPUs x images per GPU)")
    return int(m.group(1)), int(m.group(2))


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def split_batch(total: int, per_gpu_max: int, gpus: int) -> Tuple[int, int, int]:
    """(GPUs used, images per GPU, accumulation steps) whose product is ``total``: as many of ``gpus`` as divide it,
    at most ``per_gpu_max`` images per GPU."""
    if total < 1 or per_gpu_max < 1 or gpus < 1:
        raise ValueError(f"batch split needs positive numbers, got total {total}, per GPU {per_gpu_max}, gpus {gpus}")
    g = _largest_divisor(total, gpus)
    b = _largest_divisor(total // g, per_gpu_max)
    return g, b, total // (g * b)


def paper_lr(cfg, total: int) -> float:
    """The lr ``cfg`` trains with at a total batch of ``total`` (mmengine's linear auto-scaling, where on)."""
    lr = float(cfg.optim_wrapper.optimizer.lr)
    scale = cfg.get("auto_scale_lr") or {}
    if scale.get("enable"):
        lr *= total / scale["base_batch_size"]
    return lr


def _stretch(cfg, a: int) -> List[str]:
    """``--cfg-options`` multiplying by ``a`` what counts iterations (see the module docstring)."""
    options = []
    loop = cfg.get("train_cfg") or {}
    if "max_iters" in loop:
        options.append(f"train_cfg.max_iters={loop['max_iters'] * a}")
        if "val_interval" in loop:
            options.append(f"train_cfg.val_interval={loop['val_interval'] * a}")
        checkpoint = (cfg.get("default_hooks") or {}).get("checkpoint") or {}
        if "interval" in checkpoint and not checkpoint.get("by_epoch", True):
            options.append(f"default_hooks.checkpoint.interval={checkpoint['interval'] * a}")
    schedulers = cfg.get("param_scheduler") or []
    for i, sched in enumerate([schedulers] if isinstance(schedulers, dict) else schedulers):
        if not sched.get("by_epoch", True):
            prefix = "param_scheduler" if isinstance(schedulers, dict) else f"param_scheduler.{i}"
            options += [f"{prefix}.{k}={sched[k] * a}" for k in ("begin", "end") if isinstance(sched.get(k), int)]
    return options


def recipe_options(cfg, stem: str, gpus: int) -> Tuple[Recipe, List[str]]:
    """The paper's recipe of the training config ``cfg`` (file stem ``stem``) on ``gpus`` GPUs, and the
    ``--cfg-options`` that keep it (per-GPU batch, lr with auto-scaling off, accumulation, stretched counts)."""
    n, b0 = paper_setting(stem)
    if cfg.train_dataloader.batch_size != b0:
        raise ValueError(f"{stem}: the name says {n}x{b0} but train_dataloader.batch_size is "
                         f"{cfg.train_dataloader.batch_size}")
    total = n * b0
    g, b, a = split_batch(total, b0, gpus)
    lr = paper_lr(cfg, total)
    options = [f"train_dataloader.batch_size={b}"]
    if (cfg.get("auto_scale_lr") or {}).get("enable"):
        options += ["auto_scale_lr.enable=False", f"optim_wrapper.optimizer.lr={lr!r}"]
    if a > 1:
        options.append(f"optim_wrapper.accumulative_counts={a}")
        options += _stretch(cfg, a)
    return Recipe(total, g, b, a, lr), options

"""The timm side of ``tools/benchmark.py train`` (:mod:`classification.benchmarks.train`, (c) of its docstring): what
timm's ``train.py`` assembles for the DeiT recipe (:data:`RECIPE`) — dataset, loader with its CUDA prefetcher, mixing,
model, optimiser, loss — timed over the same window as ours, and timm's loader alone.
"""
from __future__ import annotations

import argparse
import math
from contextlib import nullcontext

import torch
from mmengine.config import Config

from classification.benchmarks.common import WindowTimer, forever, free_memory, timed_loop
from classification.data.augment_compat import patch_posterize
from classification.engine.distributed import release_loader_workers

__all__ = ["TIMM_MODELS", "RECIPE", "timm_model_name", "run_timm", "run_timm_data"]

TIMM_MODELS = {"deit_tiny": "deit_tiny_patch16_224", "deit_small": "deit_small_patch16_224",
               "deit_base": "deit_base_patch16_224"}
RECIPE = dict(auto_augment="rand-m9-mstd0.5-inc1", color_jitter=0.4, re_prob=0.25, re_mode="pixel", re_count=1,
              interpolation="bicubic", mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, smoothing=0.1,
              clip_grad=5.0, weight_decay=0.05, lr_per_1024=1e-3)


def timm_model_name(cfg: Config) -> str:
    kind = cfg.model.backbone.type
    if kind not in TIMM_MODELS:
        raise ValueError(f"the timm reference needs a DeiT config (backbone {sorted(TIMM_MODELS)}), got {kind!r}")
    return TIMM_MODELS[kind]


def _timm_loader(s: argparse.Namespace, workers: int, classes: int):
    """timm's dataset + loader + mixing as train.py builds them → (loader, mixup_fn or None)."""
    from timm.data import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, FastCollateMixup, Mixup, create_dataset,
                           create_loader)
    cuda = str(s.device).startswith("cuda")
    dataset = create_dataset("", root=s.data_root, split="train", is_training=True, batch_size=s.batch)
    mix_args = dict(mixup_alpha=RECIPE["mixup_alpha"], cutmix_alpha=RECIPE["cutmix_alpha"], prob=1.0,
                    switch_prob=RECIPE["switch_prob"], mode="batch", label_smoothing=RECIPE["smoothing"],
                    num_classes=classes)
    loader = create_loader(
        dataset, input_size=(3, s.input_size, s.input_size), batch_size=s.batch, is_training=True,
        use_prefetcher=cuda, re_prob=RECIPE["re_prob"], re_mode=RECIPE["re_mode"], re_count=RECIPE["re_count"],
        color_jitter=RECIPE["color_jitter"], auto_augment=RECIPE["auto_augment"],
        interpolation=RECIPE["interpolation"], mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
        num_workers=workers, collate_fn=FastCollateMixup(**mix_args) if cuda else None, pin_memory=False,
        device=torch.device(s.device), persistent_workers=workers > 0)
    patch_posterize(loader.dataset.transform)  # as ours: Pillow >= 13 refuses timm's 0-bit posterize
    return loader, (None if cuda else Mixup(**mix_args))


def run_timm(s: argparse.Namespace, workers: int, classes: int, model_name: str, drop_path: float) -> dict:
    """The timm reference training loop (module docstring, (c))."""
    import timm
    from timm.loss import SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.utils import dispatch_clip_grad
    loader, mixup_fn = _timm_loader(s, workers, classes)
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=classes, drop_path_rate=drop_path,
                              img_size=s.input_size).to(s.device).train()
    optimizer = create_optimizer_v2(model, opt="adamw", lr=RECIPE["lr_per_1024"] * s.batch / 1024,
                                    weight_decay=RECIPE["weight_decay"])
    criterion = SoftTargetCrossEntropy()
    autocast = (torch.autocast(device_type="cuda" if str(s.device).startswith("cuda") else "cpu",
                               dtype=torch.bfloat16) if s.amp else nullcontext())
    losses = []

    def step(batch):
        images, targets = batch
        if mixup_fn is not None:
            images, targets = mixup_fn(images.to(s.device), targets.to(s.device))
        with autocast:
            loss = criterion(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        dispatch_clip_grad(model.parameters(), value=RECIPE["clip_grad"], mode="norm")
        optimizer.step()
        losses.append(loss.item())  # train.py's running loss meter (not distributed)

    timer = WindowTimer(s.warmup, s.repeats, s.device)
    torch.backends.cudnn.benchmark = True
    try:
        timed_loop(forever(loader), step, timer)
    finally:
        release_loader_workers(loader)
        del model, optimizer
        free_memory(s.device)
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError("the timm reference produced a non-finite loss")
    return timer.result(s.batch)


def run_timm_data(s: argparse.Namespace, workers: int, classes: int) -> dict:
    """timm's loader alone (with its prefetcher on CUDA: copy, normalisation, erasing on the device)."""
    loader, mixup_fn = _timm_loader(s, workers, classes)
    timer = WindowTimer(s.warmup, s.repeats, s.device)

    def consume(batch):
        if mixup_fn is not None:
            mixup_fn(batch[0].to(s.device), batch[1].to(s.device))
    try:
        timed_loop(forever(loader), consume, timer)
    finally:
        release_loader_workers(loader)
        free_memory(s.device)
    return timer.result(s.batch)

"""Command-line entry points behind ``tools/train.py`` and ``tools/test.py``: any MixPro config (classification,
segmentation, detection) through mmengine's Runner.

``main`` trains, ``run_test`` evaluates a checkpoint. Both install the weights-only checkpoint loader
(:func:`classification.engine.install_safe_checkpoint_loading`) and, for multi-process runs on a host without CUDA,
start a gloo process group before the Runner (:func:`classification.engine.init_distributed`).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from classification.datasets import check_cache_sampler
from classification.engine import (adapt_config_to_host, finish_distributed, init_distributed,
                                   install_safe_checkpoint_loading, release_dataloader_workers)
from classification.loader_workers import apply_default_num_workers
from classification.mix_classifier import validate_training_config
from classification.preemption import TrainingPreempted, add_preemption_hook
from classification.runtime import configure_threads

TRAIN_USAGE = """Train any MixPro config (classification, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|CKPT]] [--amp {fp16,bf16}] [--compile]
                          [--cfg-options key=value ...] [--launcher {none,pytorch,slurm}]

Multi-GPU / multi-process: tools/dist_train.sh CONFIG GPUS (torchrun), tools/slurm_train.sh. On a host without CUDA
the distributed launch uses gloo.
"""

TEST_USAGE = """Evaluate a checkpoint with a config's test set and evaluator (classification: top-1/top-5).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...] [--launcher {none,pytorch,slurm}]
"""


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: a.b=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)


def parse_args(argv=None) -> argparse.Namespace:
    """Options of ``tools/train.py`` (``argv=None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=TRAIN_USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="resume: 'auto' (the newest checkpoint in the work dir) or a checkpoint path")
    parser.add_argument("--amp", choices=["fp16", "bf16"], help="automatic mixed precision")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the backbone (classification.backbone_compile); slow first iterations")
    _add_common_options(parser)
    return parser.parse_args(argv)


def _load_config(path: str, cfg_options) -> Config:
    if not osp.isfile(path):
        raise FileNotFoundError(f"config not found: {path}")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """The training config of ``args`` (from :func:`parse_args`): overrides, work dir, AMP optimiser wrapper, resume,
    host adaptation; validated (:func:`classification.mix_classifier.validate_training_config`)."""
    cfg = _load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join(
        "work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit(f"--amp {args.amp} needs a GPU: mmengine's AmpOptimWrapper runs on CUDA/NPU/MLU only; "
                             f"train in fp32 on the CPU")
        wrapper = cfg.optim_wrapper
        wrapper.type = "AmpOptimWrapper"
        wrapper.dtype = "bfloat16" if args.amp == "bf16" else "float16"
        # fp16 needs a dynamic loss scale; bf16 has fp32's exponent range and needs none (mmengine would otherwise
        # build a dynamic GradScaler whose scale reads synchronise with the GPU every step)
        wrapper.setdefault("loss_scale", "dynamic" if args.amp == "fp16" else dict(enabled=False))
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"checkpoint to resume from not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    if args.compile:
        cfg.custom_hooks = list(cfg.get("custom_hooks") or []) + [dict(type="CompileBackboneHook")]
    adapt_config_to_host(cfg, args.launcher)
    apply_default_num_workers(cfg)  # leave cores to this process (classification.loader_workers)
    add_preemption_hook(cfg)  # SIGTERM/SIGUSR1: checkpoint, exit 75 (classification.preemption)
    validate_training_config(cfg)
    check_cache_sampler(cfg)
    return cfg


def _start(args: argparse.Namespace) -> None:
    install_safe_checkpoint_loading()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    init_distributed(args.launcher)


def main(argv=None) -> None:
    """``tools/train.py``: build the config, train, shut data-loader workers and the process group down cleanly."""
    args = parse_args(argv)
    _start(args)
    cfg = build_config(args)
    configure_threads(cfg)
    runner = Runner.from_cfg(cfg)
    preempted = None
    try:
        runner.train()
    except TrainingPreempted as stop:
        preempted = stop
    release_dataloader_workers(runner)
    del runner  # frees the DDP reducer's reference to the process group (see finish_distributed)
    finish_distributed()
    if preempted is not None:
        raise preempted


def parse_test_args(argv=None) -> argparse.Namespace:
    """Options of ``tools/test.py``."""
    parser = argparse.ArgumentParser(description=TEST_USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir")
    _add_common_options(parser)
    return parser.parse_args(argv)


def build_test_config(args: argparse.Namespace) -> Config:
    """The evaluation config of ``args`` (from :func:`parse_test_args`): ``load_from`` the checkpoint, no resume,
    work dir ``work_dirs/<config name>/test`` unless given."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    cfg = _load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0], "test")
    cfg.load_from, cfg.resume = args.checkpoint, False
    adapt_config_to_host(cfg, args.launcher)
    apply_default_num_workers(cfg)
    check_cache_sampler(cfg)
    return cfg


def run_test(argv=None) -> dict:
    """``tools/test.py``: evaluate, print the metrics rounded to 3 decimals and return them."""
    args = parse_test_args(argv)
    _start(args)
    cfg = build_test_config(args)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    release_dataloader_workers(runner)
    del runner
    finish_distributed()
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics

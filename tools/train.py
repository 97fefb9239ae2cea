#!/usr/bin/env python
"""Train any MixPro config (classification, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|CKPT]] [--amp {fp16,bf16}]
                          [--cfg-options key=value ...] [--launcher {none,pytorch,slurm}]

Multi-GPU / multi-process: tools/dist_train.sh CONFIG GPUS (torchrun), tools/slurm_train.sh. On a host without CUDA
the distributed launch uses gloo.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from classification.engine import (adapt_config_to_host, finish_distributed, init_distributed,
                                   release_dataloader_workers)
from classification.mix_classifier import validate_training_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="resume: 'auto' (the newest checkpoint in the work dir) or a checkpoint path")
    parser.add_argument("--amp", choices=["fp16", "bf16"], help="automatic mixed precision")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: a.b=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    return parser.parse_args(argv)


def build_config(args) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(f"config not found: {args.config}")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
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
        if args.amp == "fp16":
            wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"checkpoint to resume from not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    adapt_config_to_host(cfg, args.launcher)
    validate_training_config(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    init_distributed(args.launcher)
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    runner.train()
    release_dataloader_workers(runner)
    del runner  # frees the DDP reducer's reference to the process group (see finish_distributed)
    finish_distributed()


if __name__ == "__main__":
    main()

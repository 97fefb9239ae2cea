#!/usr/bin/env python
"""Evaluate a checkpoint with a config's test set and evaluator (classification: top-1/top-5).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...] [--launcher {none,pytorch,slurm}]
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from classification.engine import (adapt_config_to_host, finish_distributed, init_distributed,
                                   release_dataloader_workers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise FileNotFoundError(f"not found: {path}")
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    init_distributed(args.launcher)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0], "test")
    cfg.load_from, cfg.resume = args.checkpoint, False
    adapt_config_to_host(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    release_dataloader_workers(runner)
    del runner
    finish_distributed()
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


if __name__ == "__main__":
    main()

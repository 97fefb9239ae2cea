#!/usr/bin/env python
"""The main job on the embedded data: MixPro (MaskMix + PAL) pretraining of the tiny ViT on Fashion-MNIST, on CPU.

    python tools/demo.py [--config CONFIG] [--work-dir work_dirs/demo] [--epochs N]

Trains with a progress bar and mmengine's log lines, evaluates the final model on the 10k test set, and leaves in the
work dir: the checkpoints, the log, ``curve.png`` (loss, lr, top-1), ``maskmix_grid.png`` (mixed training images
with λ_area, λ_attn and the PAL λ) and ``results.md``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import time

from mmengine.config import Config
from mmengine.runner import Runner

import classification  # noqa: F401  (registration, weights-only checkpoint loading)
from classification.visualize import maskmix_grid

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--work-dir", default=osp.join("work_dirs", "demo"))
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    args = parser.parse_args(argv)
    data_root = "/usr/share/datasets/fashion-mnist"
    cfg = Config.fromfile(args.config)
    if not osp.isdir(cfg.train_dataloader.dataset.get("root", data_root)):
        raise SystemExit(f"Fashion-MNIST not found at {data_root}: run `make setup` as root "
                         f"(it installs the Debian package dataset-fashion-mnist)")
    cfg.work_dir = args.work_dir
    cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [dict(type="ProgressBarHook")]
    cfg.default_hooks.logger.interval = 100
    if args.epochs:
        cfg.train_cfg.max_epochs = args.epochs
    # the final evaluation is the full 10k test set
    cfg.train_cfg.val_interval = min(cfg.train_cfg.get("val_interval", 1), cfg.train_cfg.max_epochs)

    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_s = time.time() - t0
    metrics = runner.test()
    ckpt = osp.join(args.work_dir, f"epoch_{cfg.train_cfg.max_epochs}.pth")

    maskmix_grid(args.config, ckpt, osp.join(args.work_dir, "maskmix_grid.png"))
    total_s = time.time() - t0
    table = ("| model | method | epochs | test top-1 | test top-5 | train time | total time |\n|---|---|---|---|---|---|---|\n"
             f"| {cfg.model.backbone.type} | {cfg.model.label_policy.type}, maskmix_prob {cfg.model.mix.maskmix_prob} | "
             f"{cfg.train_cfg.max_epochs} | "
             f"{metrics['top1']:.2f} | {metrics['top5']:.2f} | {train_s / 60:.1f} min | {total_s / 60:.1f} min |\n")
    with open(osp.join(args.work_dir, "results.md"), "w") as f:
        f.write("# Demo: MixPro on Fashion-MNIST (CPU)\n\n" + table)
    print("\n" + table)
    print(f"Fashion-MNIST test top-1: {metrics['top1']:.2f}%  (checkpoint {ckpt}; curve, grid and results.md in "
          f"{args.work_dir})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Robustness benchmarks of one or several checkpoints of the same model config (docs/methods.md, "Robustness
benchmarks").

    python tools/robustness.py CONFIG CHECKPOINT [--compare CKPT2 ...] [--names NAME1 NAME2 ...]
        [--suite occlusion,shuffle,imagenet-a,imagenet-r,imagenet-o,fgsm,pgd] [--out-dir DIR] [--batch-size N]
        [--max-samples N] [--attack-max-samples N] [--num-workers N] [--device cpu|cuda] [--amp] [--seed S]
        [--pgd-steps 10] [--patch-size P] [--imagenet-a DIR] [--imagenet-r DIR] [--imagenet-o DIR] [--ema]
        [--imagenet-val DIR] [--quiet]

Outputs and options: :mod:`classification.experiments.robustness.report`; the suites:
:mod:`classification.experiments.robustness.evaluate`.
"""
from classification.foundation.errors import run_tool
from classification.experiments.robustness.report import main

if __name__ == "__main__":
    run_tool(main)

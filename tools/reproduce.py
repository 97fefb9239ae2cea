#!/usr/bin/env python
"""Reproduction table: every mixing method on Fashion-MNIST with the tiny ViT, several seeds, one budget.

    python tools/reproduce.py [--methods none,baseline,...|all] [--seeds 0,1,2] [--budget 0.5]
                              [--out docs/results.md] [--plot docs/results.png] [--work-root work_dirs/reproduce]
                              [--jobs N] [--force] [--keep-going] [--report-only] [--cfg-options key=value ...]

Runs, cache, statistics and report: :mod:`classification.experiments.reproduction`.
"""
from classification.foundation.errors import run_tool
from classification.experiments.reproduction.cli import main

if __name__ == "__main__":
    run_tool(main)

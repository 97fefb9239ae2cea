#!/usr/bin/env python
"""Evaluate a checkpoint with a config's test set and evaluator (classification: top-1/top-5).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...] [--launcher {none,pytorch,slurm}]

The options and the run are defined in :mod:`classification.launch`.
"""
from classification.launch import run_test

if __name__ == "__main__":
    run_test()

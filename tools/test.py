#!/usr/bin/env python
"""Evaluate a checkpoint with a config's test set and evaluator (classification: top-1/top-5).

    python tools/test.py CONFIG CHECKPOINT [--ema] [--work-dir DIR] [--show-config] [--cfg-options ...]
                         [--launcher {none,pytorch,slurm}]

Prints the metrics and writes them to <work-dir>/metrics.json. The options and the run are defined in
:mod:`classification.engine.launch`; a mistake is one ``error:`` line and exit status 2
(:mod:`classification.foundation.errors`).
"""
from classification.foundation.errors import run_tool
from classification.engine.launch import run_test

if __name__ == "__main__":
    run_tool(run_test)

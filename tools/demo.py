#!/usr/bin/env python
"""The main job on the embedded data, on CPU: pretrain → convert → Segmenter → Mask R-CNN, one results table.

    python tools/demo.py [--work-dir work_dirs/demo] [--stages pretrain,segmentation,detection] [--quick]

The stages and the table: :mod:`classification.experiments.demo`.
"""
from classification.foundation.errors import run_tool
from classification.experiments.demo import main

if __name__ == "__main__":
    run_tool(main)

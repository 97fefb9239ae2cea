#!/usr/bin/env python
"""A PNG grid of training images mixed by MaskMix across a range of λ, each with its labels, λ_area, λ_attn and the
PAL λ, from a trained classifier.

    python tools/visualize.py CONFIG CHECKPOINT [--out maskmix_grid.png] [--num 16] [--seed 0] [--ema]

The grid and its options: :mod:`classification.experiments.visualize`.
"""
from classification.foundation.errors import run_tool
from classification.experiments.visualize import main

if __name__ == "__main__":
    run_tool(main)

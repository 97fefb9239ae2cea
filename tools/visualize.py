#!/usr/bin/env python
"""A PNG grid of MaskMix-mixed images with their labels, λ_area, λ_attn and the PAL λ, from a trained classifier.

    python tools/visualize.py CONFIG CHECKPOINT [--out maskmix_grid.png] [--num 16] [--seed 0]
"""
from __future__ import annotations

import argparse
import os.path as osp

from classification.engine import install_safe_checkpoint_loading
from classification.visualize import maskmix_grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default=None, help="PNG path (default: next to the checkpoint)")
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    install_safe_checkpoint_loading()
    out = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)), "maskmix_grid.png")
    print(f"wrote {maskmix_grid(args.config, args.checkpoint, out, args.num, args.seed)}")


if __name__ == "__main__":
    main()

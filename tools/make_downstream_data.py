#!/usr/bin/env python
"""Deterministic composite downstream dataset: Fashion-MNIST objects pasted on scikit-image's bundled photos, with
ADE20K-style label maps (mmseg) and COCO instances (mmdet) of the same images.

    python tools/make_downstream_data.py --out data/composite --num-train 300 --num-val 60 --size 128 --seed 0

Layout and composition: :mod:`classification.transfer.downstream_data.composite`.
"""
import sys

from classification.transfer.downstream_data.composite import main

if __name__ == "__main__":
    sys.exit(main())

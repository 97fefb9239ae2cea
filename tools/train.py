#!/usr/bin/env python
"""Train any MixPro config (classification, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|CKPT]] [--amp {fp16,bf16}]
                          [--cfg-options key=value ...] [--launcher {none,pytorch,slurm}]

The options and the run are defined in :mod:`classification.launch`.
"""
from classification.launch import main

if __name__ == "__main__":
    main()

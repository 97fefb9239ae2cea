#!/usr/bin/env python
"""Train any MixPro config (classification, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--epochs N] [--resume [auto|CKPT]] [--amp {fp16,bf16}]
                          [--compile] [--partial-load PATTERN ...] [--vis {tensorboard,wandb} ...] [--show-config]
                          [--cfg-options key=value ...] [--launcher {none,pytorch,slurm}]

The options, the outputs and the run are defined in :mod:`classification.engine.launch`; a mistake in the command or the
config is one ``error:`` line and exit status 2 (:mod:`classification.foundation.errors`).
"""
from classification.foundation.errors import run_tool
from classification.engine.launch import main

if __name__ == "__main__":
    run_tool(main)

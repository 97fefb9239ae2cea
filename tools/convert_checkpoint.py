#!/usr/bin/env python
"""Convert a classification checkpoint (ours, timm, DeiT / official MixPro / PVT v1 releases) into the format of a
downstream backbone.

    python tools/convert_checkpoint.py SRC DST --to {mmseg-vit,mmdet-pvt,timm,safetensors} [--img-size H W] [--ema]
                                      [--keep-head]

Targets, key mapping and the report: :mod:`classification.transfer.convert`.
"""
import sys

from classification.transfer.convert import main

if __name__ == "__main__":
    sys.exit(main())

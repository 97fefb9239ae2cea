#!/usr/bin/env python
"""Convert a MixPro classification checkpoint into the format of a downstream backbone.

    python tools/convert_checkpoint.py SRC DST --to {mmseg-vit,mmdet-pvt,timm,safetensors} [--img-size H W]

Targets, key mapping and the report: :mod:`classification.convert`.
"""
import sys

from classification.convert import main

if __name__ == "__main__":
    sys.exit(main())

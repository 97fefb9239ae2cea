#!/usr/bin/env python
"""Segmentation and detection sets from the real photos of the Debian package ``labelme-examples``.

    python tools/make_labelme_data.py [--out data/labelme] [--root /usr/share/doc/labelme-examples/examples]

Sources, layout and id handling: :mod:`classification.transfer.downstream_data.labelme`.
"""
import sys

from classification.transfer.downstream_data.labelme import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""No module imports above its layer (foundation < data, models < engine < transfer < benchmarks, experiments).

    python tools/check_layers.py     # prints each violation, exit 1 when there is one (`make test` runs it)

:mod:`classification.devtools.layering`.
"""
import sys

from classification.devtools.layering import main

if __name__ == "__main__":
    sys.exit(main())

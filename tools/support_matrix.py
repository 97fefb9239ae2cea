#!/usr/bin/env python
"""README.md's method × backbone matrix, generated from the config names.

    python tools/support_matrix.py           # rewrite the block in README.md
    python tools/support_matrix.py --check   # exit 1 when it is stale (a test runs this)

:mod:`classification.devtools.support_matrix`.
"""
from classification.foundation.errors import run_tool
from classification.devtools.support_matrix import main

if __name__ == "__main__":
    run_tool(main)

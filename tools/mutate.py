#!/usr/bin/env python
"""Mutation testing: mutmut on modules, each against its paired tests, within a time budget.

    python tools/mutate.py [MODULE_OR_FOLDER ...] [--budget SECONDS] [--fresh] [--diffs]

Module list, pairing, scratch copies and the score: :mod:`classification.devtools.mutation`; docs/development.md.
"""
from classification.devtools.mutation import main
from classification.foundation.errors import run_tool

if __name__ == "__main__":
    run_tool(main)

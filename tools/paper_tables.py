#!/usr/bin/env python
"""The paper's Tables 1–3 at full scale: the plan of every run, and the collector of their metrics.

    python tools/paper_tables.py plan --work-root W --gpus N [--rows table2 table3 ...] [--methods ...]
                                      [--deit-patch 14] [--quick] [--amp bf16] [--gpus-per-node 8] [--out DIR]
    python tools/paper_tables.py collect W [--out TABLES.md] [--json CELLS.json]
    python tools/paper_tables.py quick-data DIR      # the tiny data sets of a --quick plan (its first step)

Rows, paper numbers and the collector: :mod:`classification.experiments.reproduction.paper_tables`; the jobs and the
scripts: :mod:`classification.experiments.reproduction.paper_plan` (docs/clusters.md).
"""
import sys

from classification.experiments.reproduction.paper_cli import main

if __name__ == "__main__":
    sys.exit(main())

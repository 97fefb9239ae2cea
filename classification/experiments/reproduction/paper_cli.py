"""``tools/paper_tables.py {plan,collect,quick-data}``: the command line over :mod:`.paper_tables` (rows, paper numbers,
collector) and :mod:`.paper_plan` (the jobs, their recipes and scripts).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

from classification.foundation.atomic import atomic_write_text
from classification.foundation.errors import one_line

from . import paper_plan, paper_tables


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/paper_tables.py {plan,collect,quick-data}``; 0 on success, 2 with one ``error:`` line."""
    parser = argparse.ArgumentParser(prog="paper_tables.py", description=paper_tables.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    paper_plan.add_plan_parser(sub)
    col = sub.add_parser("collect", help="print Tables 1–3 from a work root's metrics.json files")
    col.add_argument("work_root")
    col.add_argument("--out", help="also write the Markdown tables to this file")
    col.add_argument("--json", help="also write every cell (ours, paper, diff, source) as JSON to this file")
    data = sub.add_parser("quick-data", help="write the tiny data sets of a --quick plan (the plan's first step)")
    data.add_argument("out_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            paper_plan.plan_main(args)
        elif args.command == "quick-data":
            paper_plan.make_quick_data(args.out_dir)
        else:
            work_root = osp.abspath(args.work_root)
            if not osp.isdir(work_root):
                raise FileNotFoundError(f"work root {work_root} does not exist")
            cells = paper_tables.collect(work_root)
            quick = paper_tables.is_quick_root(work_root)
            text = paper_tables.markdown(cells, work_root, quick)
            print(text, end="")
            if args.out:
                atomic_write_text(args.out, text)
            if args.json:
                atomic_write_text(args.json, json.dumps(dict(work_root=work_root, quick=quick, cells=cells), indent=1))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0

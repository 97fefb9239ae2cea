"""The command line of ``tools/reproduce.py`` (and of one run in its own process: ``python -m
classification.experiments.reproduction.cli run-one ...``).

    python tools/reproduce.py [--set default|pal-ablation|tokens64|vit-methods|downstream] [--methods none,...|all]
                              [--seeds 0,1,2] [--budget 0.3] [--out docs/results.md] [--plot docs/results.png]
                              [--work-root work_dirs/reproduce] [--jobs N] [--force] [--keep-going] [--report-only]
                              [--cfg-options key=value ...]

Trains and tests every (method, seed) pair of the set (:mod:`.runs`; ``--set downstream``: :mod:`.downstream`) for
``max(1, round(20 · budget))`` epochs, ``--jobs`` at a time, skipping runs with a ``result.json``, and writes the
report (:mod:`.report`). What each set runs and reports: docs/reproduction.md.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import re
import shlex
import sys
import time
from typing import Dict, Optional

from classification.foundation.atomic import atomic_write_text
from classification.foundation.errors import UserError, run_tool
from classification.foundation.host import ROOT, environment, usable_cores

from . import downstream, runs
from .report import (include_set_reports, markdown_report, plot_results, plot_set_results, policy_curves,
                     set_report)
from .stats import aggregate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reproduce.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="exp_set", default="default",
                        choices=["default", *runs.EXPERIMENT_SETS, "downstream"],
                        help="a named experiment set (default: the methods of docs/results.md)")
    parser.add_argument("--methods", help=f"comma-separated methods, or 'all' for every config (default: "
                                          f"{','.join(runs.default_methods())}); with --set: labels of the set")
    parser.add_argument("--seeds", default=",".join(map(str, runs.DEFAULT_SEEDS)),
                        help="comma-separated (default 0,1,2)")
    parser.add_argument("--budget", type=float,
                        help=f"fraction of the configs' {runs.BASE_EPOCHS} epochs: epochs = "
                             f"max(1, round({runs.BASE_EPOCHS}·F)) (default {runs.DEFAULT_BUDGET} → "
                             f"{runs.epochs_for_budget(runs.DEFAULT_BUDGET)} epochs; with --set, the set's budget: "
                             + ", ".join(f"{name} {s.budget}" for name, s in runs.EXPERIMENT_SETS.items()) + ")")
    parser.add_argument("--out", help="Markdown report (default: docs/results.md of the repository; with --set NAME "
                                      "docs/results-NAME.md)")
    parser.add_argument("--plot", help="bar plot PNG (default: --out with .png)")
    parser.add_argument("--work-root", help="runs go to WORK_ROOT/METHOD/seedSEED (default: work_dirs/reproduce of the "
                                            "repository; with --set NAME work_dirs/reproduce-NAME)")
    parser.add_argument("--config-dir", default=runs.CONFIG_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=usable_cores(),
                        help="runs at the same time, each in its own process with usable cores // N intra-op threads "
                             f"(default: the usable cores, {usable_cores()} here, one thread per run)")
    parser.add_argument("--force", action="store_true", help="retrain runs that already have a result.json")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failed run, go on with the others (the report lists the failure)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the report from the result.json files already there")
    parser.add_argument("--pretrain-root", help="--set downstream: the pretraining runs PRETRAIN_ROOT/METHOD/seedSEED "
                                                "(default: the default set's work_dirs/reproduce, so its runs are reused)")
    parser.add_argument("--heads", help=f"--set downstream: comma-separated heads (default: all of "
                                        f"{','.join(downstream.HEADS)})")
    parser.add_argument("--quick", action="store_true",
                        help="--set downstream: seconds per run on 8/4 composite images (a smoke test; own pretraining "
                             "in WORK_ROOT/pretrain)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run (e.g. train_dataloader.dataset.limit=1000)")
    return parser


def parse_args(argv) -> argparse.Namespace:
    """The options of :func:`build_parser`, with the set's defaults filled in (work root, report, pretraining root,
    budget); options that do not fit together end in argparse's usage error (exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    suffix = "" if args.exp_set == "default" else f"-{args.exp_set}"
    args.work_root = osp.abspath(args.work_root or osp.join(ROOT, "work_dirs", f"reproduce{suffix}"))
    args.out = osp.abspath(args.out or osp.join(ROOT, "docs", f"results{suffix}.md"))
    if args.exp_set == "downstream":
        if args.keep_going or args.cfg_options:
            parser.error("--set downstream stops at a failure (rerun to continue) and takes no --cfg-options")
        args.pretrain_root = osp.abspath(args.pretrain_root or (
            osp.join(args.work_root, "pretrain") if args.quick else osp.join(ROOT, "work_dirs", "reproduce")))
    elif args.quick or args.heads or args.pretrain_root:
        parser.error("--quick, --heads and --pretrain-root belong to --set downstream")
    if args.budget is None:
        exp_set = runs.EXPERIMENT_SETS.get(args.exp_set)
        args.budget = exp_set.budget if exp_set else runs.DEFAULT_BUDGET
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    for option in args.cfg_options:
        if "=" not in option:
            parser.error(f"--cfg-options takes KEY=VALUE, got {option!r}")
        if re.match(r"^(randomness\.seed|model\.mix_seed|train_cfg\.max_epochs|work_dir)=", option):
            parser.error(f"--cfg-options {option}: set by reproduce.py itself (--seeds / --budget / --work-root)")
    return args


def run_one_main(argv) -> None:
    """``run-one CONFIG --method M --seed S --epochs E --work-dir DIR [--cfg-options ...]``: one run in this
    process; prints ``RESULT <json>``."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog="reproduce.py run-one", description="train and evaluate one run")
    parser.add_argument("config")
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--occlusion-patches", type=int, nargs="+", default=[])
    parser.add_argument("--shuffle-grids", type=int, nargs="+", default=[])
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    args = parser.parse_args(argv)
    result = runs.train_and_evaluate(args.method, args.config, args.seed, args.epochs, args.work_dir,
                                     args.cfg_options, args.occlusion_patches, args.shuffle_grids)
    print("RESULT " + json.dumps(result))


def main(argv=None) -> Optional[Dict[str, dict]]:
    """``tools/reproduce.py``: run what is missing, write the report and the plot; returns the per-method
    statistics (None for ``run-one``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run-one"]:
        run_one_main(argv[1:])
        return None
    t_start = time.time()
    args = parse_args(argv)
    if args.exp_set == "downstream":
        return downstream_main(args, argv, t_start)
    exp_set = runs.EXPERIMENT_SETS.get(args.exp_set)
    configs = exp_set.configs(args.config_dir) if exp_set else None
    methods = runs.resolve_set_labels(exp_set, args.methods) if exp_set else \
        runs.resolve_methods(args.methods, args.config_dir)
    seeds = runs.parse_seeds(args.seeds)
    epochs = runs.epochs_for_budget(args.budget)
    patches = exp_set.occlusion_patches if exp_set else ()
    outcome = runs.run_all(methods, seeds, epochs, args.work_root, args.config_dir, args.cfg_options,
                           force=args.force, keep_going=args.keep_going, report_only=args.report_only,
                           jobs=args.jobs, configs=configs, occlusion_patches=patches,
                           shuffle_grids=exp_set.shuffle_grids if exp_set else ())
    results = outcome.results
    stats = aggregate(results, methods)
    meta = dict(environment(), command=shlex.join(["python", "tools/reproduce.py", *argv]), budget=args.budget,
                epochs=epochs, seeds=seeds, methods=methods, runs=len(results), trained=outcome.trained,
                reused=outcome.reused, wall_seconds=time.time() - t_start,
                sum_run_seconds=sum(float(r.get("run_seconds", r.get("train_seconds", 0))) for r in results),
                sum_train_seconds=sum(float(r.get("train_seconds", 0)) for r in results),
                failed=outcome.failed, jobs=args.jobs,
                threads=sorted({r["threads"] for r in results if isinstance(r.get("threads"), int)}),
                work_root=args.work_root, cfg_options=list(args.cfg_options),
                finished=time.strftime("%Y-%m-%d %H:%M"))
    plot = args.plot or osp.splitext(args.out)[0] + ".png"
    title = (f"tiny ViT on Fashion-MNIST, {runs.epochs_text(epochs)}, mean ± std over "
             f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} (y axes do not start at 0)")
    rel = lambda path: osp.relpath(osp.abspath(path), osp.dirname(osp.abspath(args.out)))  # noqa: E731
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if exp_set:
        plot_set_results(exp_set, results, methods, plot, title)
        curves = osp.splitext(args.out)[0] + "-curves.png"
        curve_stats = policy_curves(exp_set, results, methods, args.work_root, curves)
        text = set_report(exp_set, results, methods, meta, rel(plot), rel(curves) if curve_stats else None,
                          curve_stats)
    else:
        plot_results(stats, plot, title)
        text = markdown_report(stats, meta, args.config_dir, rel(plot))
    atomic_write_text(args.out, text)
    print("\n" + text)
    print(f"wrote {runs.show_path(args.out)} and {runs.show_path(plot)}")
    results_md = osp.join(osp.dirname(args.out), "results.md")
    if osp.isfile(results_md):
        include_set_reports(results_md)
    return stats


def _pick(spec: Optional[str], choices, what: str) -> list:
    if not spec or spec.strip() == "all":
        return list(choices)
    chosen = [c.strip() for c in spec.split(",") if c.strip()]
    if not chosen or any(c not in choices for c in chosen) or len(set(chosen)) != len(chosen):
        raise UserError(f"{what} {spec!r}: choose distinct names from {', '.join(choices)}")
    return [c for c in choices if c in chosen]


def downstream_main(args: argparse.Namespace, argv, t_start: float) -> Dict[str, str]:
    """``--set downstream``: pretrain what is missing, fine-tune every (head, backbone, seed) without a result, write
    the report and its figure; returns one summary line per head."""
    from .downstream_report import markdown, plot, summary_lines
    inits = _pick(args.methods, downstream.INITS, "--methods")
    heads = _pick(args.heads, list(downstream.HEADS), "--heads")
    seeds = runs.parse_seeds(args.seeds)
    epochs = 1 if args.quick else runs.epochs_for_budget(args.budget)
    data_root = osp.join(args.work_root, "data") if args.quick else downstream.DATA_ROOT
    quick_pretrain = {f"{loader}.dataset.limit": 256 for loader in
                      ("train_dataloader", "val_dataloader", "test_dataloader")} if args.quick else None
    ran = 0
    if not args.report_only:
        downstream.ensure_data(data_root, args.quick)
        plan = downstream.build_plan(seeds, inits, heads, args.work_root, args.pretrain_root, epochs, data_root,
                                     args.quick, args.force, quick_pretrain)
        count = lambda n, word: f"{n} {word}{'s' if n != 1 else ''}"  # noqa: E731
        print(f"reproduce --set downstream: {count(len(inits), 'backbone')} ({', '.join(inits)}) × "
              f"{count(len(heads), 'head')} ({', '.join(heads)}) × {count(len(seeds), 'seed')} = "
              f"{count(plan.finetunes, 'fine-tune')}, {plan.finetune_done} done "
              f"already; {len(plan.stages)} runs to go ({plan.pretrain_done} pretraining runs reused from "
              f"{runs.show_path(args.pretrain_root)}), {args.jobs} at a time", flush=True)
        try:
            downstream.run_plan(plan, args.jobs)
        except UserError:  # a mistake (e.g. a work dir in use): one line as it is
            raise
        except Exception as err:  # StageError: the finished runs keep their results
            raise SystemExit(f"{err}\nfinished runs keep their result.json: rerun the same command to continue")
        ran = len(plan.stages)
    collected = downstream.collect(args.work_root, args.pretrain_root, seeds, inits, heads, epochs, args.quick)
    floor = downstream.floor_miou(data_root) if osp.isdir(osp.join(data_root, "annotations")) else None
    meta = dict(environment(), command=shlex.join(["python", "tools/reproduce.py", *argv]), epochs=epochs,
                floor=floor, wall_seconds=time.time() - t_start, ran=ran, jobs=args.jobs,
                sum_run_seconds=sum(float(r.get("run_seconds") or 0) for r in collected["runs"]),
                threads=", ".join(map(str, sorted({r["threads"] for r in collected["runs"] if r.get("threads")})))
                or "—", work_root=args.work_root, pretrain_root=args.pretrain_root,
                finished=time.strftime("%Y-%m-%d %H:%M"), quick=args.quick)
    figure = args.plot or osp.splitext(args.out)[0] + ".png"
    plot(collected, inits, heads, figure, floor)
    text = markdown(collected, inits, heads, seeds, meta,
                    osp.relpath(figure, osp.dirname(args.out)))
    atomic_write_text(args.out, text)
    lines = summary_lines(collected, inits, heads)
    print("\n" + "\n".join(lines.values()))
    print(f"wrote {runs.show_path(args.out)} and {runs.show_path(figure)}")
    return lines


if __name__ == "__main__":
    run_tool(main)

"""The demo behind ``tools/demo.py`` (``make demo``; docs/get-started.md), on CPU: MixPro pretraining of the tiny
ViT on Fashion-MNIST for ``--epochs`` (default 15: the config's schedule shortened to end there) → conversion to mmseg
ViT key names at the downstream ``img_size`` (those backbones load strictly) → Segmenter and Mask R-CNN on the
composite set, each from random init and from the MixPro checkpoint, trained then evaluated once (no validation loop).

    python tools/demo.py [--work-dir work_dirs/demo] [--stages pretrain,segmentation,detection] [--epochs 15]
                         [--jobs N] [--quick]

Every run is prepared and run as ``tools/train.py``'s (:func:`~classification.engine.launch.prepare_config`,
:mod:`~classification.engine.lifecycle`), seeded (``randomness.seed=0``); ``--jobs N``: N fine-tunes at a time.
:func:`main` writes ``results.md`` / ``.json``: a row per initialisation, the all-background floor, each stage's times.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config

from classification.data.fashion_mnist import FASHION_MNIST_ROOT
from classification.engine import lifecycle
from classification.foundation.atomic import atomic_write_text
from classification.engine.config_check import load_config
from classification.engine.hooks import ProgressBarHook
from classification.foundation.errors import MissingPathError
from classification.foundation.host import ROOT, configure_threads, usable_cores
from classification.engine.launch import prepare_config
from classification.experiments.composite_runs import composite_run, on_composite, prepare_worker
from classification.experiments.stages import Stage, StageRun, run_stages
from classification.experiments.visualize import maskmix_grid
from classification.transfer.convert import convert_file
from classification.transfer.downstream_data.composite import COMPLETE_MARKER, all_background_miou, make_composite

PRETRAIN_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
SEG_CONFIGS = {"random": "configs/segmentation/segmenter-mask_tiny-vit_scratch_1xb16-500i_composite-64.py",
               "mixpro": "configs/segmentation/segmenter-mask_tiny-vit_fmnist-mixpro_1xb16-500i_composite-64.py"}
DET_CONFIGS = {"random": "configs/detection/mask-rcnn_tiny-vit_scratch_pyramid_1xb4-6e_composite-64.py",
               "mixpro": "configs/detection/mask-rcnn_tiny-vit_fmnist-mixpro_pyramid_1xb4-6e_composite-64.py"}
PRETRAIN_EPOCHS = 15
INITS = {"random": "random init", "mixpro": "MixPro, Fashion-MNIST"}
STAGES = ("pretrain", "segmentation", "detection")
LONGEST_FIRST = ("detection", "segmentation")
SEEDED_NOTE = ("Every stage runs with seed 0 (its config's randomness.seed). The floor is the mIoU of predicting "
               "background everywhere on the validation labels. One seed at this size says little about pretraining "
               "methods: tools/reproduce.py --set downstream compares baseline, TransMix and MixPro "
               "backbones over 3 seeds.\n")


def _progress_hooks(cfg) -> None:
    """A progress bar on ``cfg``'s run; the hook registers with this module's import, so in the stage workers too
    (the segmentation / detection configs import no classification module)."""
    cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [dict(type=ProgressBarHook.__name__)]


def pretrain_config(config: str, epochs: int, work_dir: str, quick: bool = False) -> Config:
    """The pretraining run (:func:`classification.engine.launch.prepare_config`): ``config`` with its schedule
    (warm-up, then cosine) shortened to end at ``epochs``, validation once at the end, all usable cores unless
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` say otherwise (the in-memory loader runs no workers); ``quick``: 512
    images per split."""
    cfg = load_config(config)
    if not osp.isdir(cfg.train_dataloader.dataset.get("root", FASHION_MNIST_ROOT)):
        raise MissingPathError(f"Fashion-MNIST not found at {FASHION_MNIST_ROOT}: run `make setup` as root "
                               f"(it installs the Debian package dataset-fashion-mnist)")
    _progress_hooks(cfg)
    cfg.default_hooks.logger.interval = 100
    cfg.train_cfg.val_interval = epochs
    if quick:
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            loader.dataset.limit = 512
            loader.num_workers, loader.persistent_workers = 0, False
    return prepare_config(cfg, work_dir=work_dir, epochs=epochs)


def pretrain(args, work_dir: str) -> dict:
    """Stage 1: the Fashion-MNIST classifier; returns top-1/top-5, the checkpoint, the threads and the seconds."""
    cfg = pretrain_config(args.config, args.epochs, work_dir, args.quick)
    threads = configure_threads(cfg)
    t0 = time.time()
    metrics = lifecycle.run(cfg, test=True).metrics
    ckpt = osp.join(work_dir, f"epoch_{cfg.train_cfg.max_epochs}.pth")
    maskmix_grid(args.config, ckpt, osp.join(work_dir, "maskmix_grid.png"))
    return dict(top1=float(metrics["top1"]), top5=float(metrics["top5"]), checkpoint=ckpt,
                epochs=cfg.train_cfg.max_epochs, threads=threads, seconds=time.time() - t0)


def downstream_img_size() -> tuple:
    """The ``img_size`` of the downstream backbones (the same in every Segmenter / Mask R-CNN config of the demo):
    the converted checkpoint's position grid is resized for it, since those backbones load strictly."""
    sizes = {tuple(load_config(osp.join(ROOT, c)).model.backbone.img_size)
             for c in (*SEG_CONFIGS.values(), *DET_CONFIGS.values())}
    if len(sizes) != 1:
        raise ValueError(f"the demo's downstream configs use several backbone img_size values: {sorted(sizes)}")
    return sizes.pop()


def convert(ckpt: str, dst: str) -> str:
    """Stage 2: classifier checkpoint → mmseg ViT names for the downstream img_size (the report is printed)."""
    report = convert_file(ckpt, dst, "mmseg-vit", img_size=downstream_img_size())
    print(report.format())
    return dst


def ensure_composite(data_root: str, quick: bool) -> str:
    """Generate the composite set into ``data_root`` unless a whole one is there (its ``COMPLETE_MARKER``)."""
    if not osp.isfile(osp.join(data_root, COMPLETE_MARKER)):
        sizes = dict(num_train=8, num_val=4) if quick else {}
        make_composite(data_root, **sizes)
    return data_root


def finetune_config(config: str, work_dir: str, data_root: str, backbone_ckpt: Optional[str], quick: bool,
                    task: str) -> Config:
    """A downstream run of ``config`` (relative to the repository) on the composite set at ``data_root``, from
    ``backbone_ckpt`` (None: random init), without a validation loop (the demo evaluates once, at the end);
    ``quick``: a few iterations at batch 2; validated as ``tools/train.py`` validates
    (:func:`classification.engine.launch.prepare_config`)."""
    cfg = load_config(osp.join(ROOT, config))
    _progress_hooks(cfg)
    if backbone_ckpt is not None:
        cfg.model.backbone.init_cfg.checkpoint = backbone_ckpt
    on_composite(cfg, data_root, task, quick)
    return prepare_config(cfg, work_dir=work_dir)


def finetune(config: str, work_dir: str, data_root: str, backbone_ckpt: Optional[str], quick: bool,
             task: str) -> dict:
    """Stages 3/4: train a downstream config on the composite set and evaluate it; returns metrics, the threads
    and the seconds."""
    cfg = finetune_config(config, work_dir, data_root, backbone_ckpt, quick, task)
    t0 = time.time()
    metrics = lifecycle.run(cfg, test=True).metrics
    seconds = time.time() - t0
    threads = torch.get_num_threads()
    if task == "segmentation":
        return dict(mIoU=float(metrics["mIoU"]), threads=threads, seconds=seconds)
    return dict(bbox_AP=100 * float(metrics["coco/bbox_mAP"]), segm_AP=100 * float(metrics["coco/segm_mAP"]),
                threads=threads, seconds=seconds)


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(results: dict) -> str:
    """One row per backbone initialisation: Fashion-MNIST top-1 (pretraining), composite mIoU, bbox AP, segm AP; then
    the floor (all-background mIoU of the validation labels) when ``results['floor']`` holds it."""
    pre = results.get("pretrain", {})
    lines = ["| backbone init | Fashion-MNIST top-1 | composite mIoU | composite bbox AP | composite segm AP |",
             "|---|---|---|---|---|"]
    for key, name in INITS.items():
        seg = results.get("segmentation", {}).get(key, {})
        det = results.get("detection", {}).get(key, {})
        top1 = pre.get("top1") if key == "mixpro" else None
        lines.append(f"| {name} | {_fmt(top1)} | {_fmt(seg.get('mIoU'))} | {_fmt(det.get('bbox_AP'), 1)} | "
                     f"{_fmt(det.get('segm_AP'), 1)} |")
    if "floor" in results:
        lines.append(f"| floor: all background | — | {_fmt(results['floor']['mIoU'])} | — | — |")
    return "\n".join(lines) + "\n"


def _threads(run: dict) -> str:
    """``", N thread(s)"`` from a stage's result, or nothing for results written before threads were recorded."""
    threads = run.get("threads")
    return "" if threads is None else f", {threads} thread{'s' if threads > 1 else ''}"


def timing_lines(results: dict) -> str:
    parts = []
    if "pretrain" in results:
        pre = results["pretrain"]
        parts.append(f"pretraining {pre['seconds'] / 60:.1f} min ({pre['epochs']} epochs{_threads(pre)})")
    for task in ("segmentation", "detection"):
        for key, run in results.get(task, {}).items():
            parts.append(f"{task} ({INITS[key]}{_threads(run)}) {run['seconds'] / 60:.1f} min")
    jobs = results.get("schedule", {}).get("jobs", 1)
    parts.append(f"total {results['total_seconds'] / 60:.1f} min"
                 + (f" (fine-tunes {jobs} at a time)" if jobs > 1 else ""))
    return "Time on this machine: " + "; ".join(parts) + ".\n"


def parse_args(argv=None) -> argparse.Namespace:
    """``tools/demo.py``'s command line; ``stages`` as a list, ``data_root`` resolved. Bad values end in argparse's
    usage error (exit 2)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=PRETRAIN_CONFIG, help="the Fashion-MNIST pretraining config")
    parser.add_argument("--work-dir", default=osp.join("work_dirs", "demo"))
    parser.add_argument("--data-root", default=None,
                        help="composite set (default data/composite, or <work-dir>/composite with --quick)")
    parser.add_argument("--epochs", type=int, default=PRETRAIN_EPOCHS,
                        help=f"pretraining epochs (default {PRETRAIN_EPOCHS}; the config's schedule, warm-up then "
                             "cosine, is shortened to end there)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="comma-separated subset of pretrain,segmentation,detection (downstream stages without "
                             "pretrain reuse <work-dir>/epoch_*.pth)")
    parser.add_argument("--jobs", type=int, default=2 if usable_cores() >= 2 else 1,
                        help="stages run at the same time, each in its own process with usable cores // N threads "
                             "(default 2 where at least 2 cores are usable, else 1: all stages in this process, one "
                             "after another)")
    parser.add_argument("--quick", action="store_true", help="seconds per stage: a smoke test of the pipeline")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    args.data_root = args.data_root or (osp.join(args.work_dir, "composite") if args.quick else "data/composite")
    return args


def downstream_tasks(args) -> List[str]:
    return [s for s in ("segmentation", "detection") if s in args.stages]


def plan_stages(args) -> Tuple[List[Stage], dict]:
    """The stages ``args`` asks for, and the results kept from an earlier run (its pretraining's numbers, for the table,
    when the pretrain stage does not run). Generates the composite set (once, before any worker reads it) when a
    downstream stage runs; raises MissingPathError when one needs a pretraining checkpoint that is not there."""
    results: dict = {}
    ckpt = osp.join(args.work_dir, f"epoch_{args.epochs}.pth")
    plan = []
    if "pretrain" in args.stages:
        # in this process on all the cores: everything downstream waits for it, and one process with 2 threads
        # pretrains faster than one with 1 thread beside another process
        plan.append(Stage("pretrain", pretrain, dict(args=args, work_dir=args.work_dir), work_dir=args.work_dir,
                          local=True))
    else:
        previous = osp.join(args.work_dir, "results.json")
        if osp.isfile(previous):
            with open(previous) as f:
                earlier = json.load(f).get("pretrain")
            if earlier:
                results["pretrain"] = earlier
        if downstream_tasks(args) and not osp.isfile(ckpt):
            raise MissingPathError(f"{ckpt} not found: run the pretrain stage first (--stages pretrain)")
    if downstream_tasks(args):
        ensure_composite(args.data_root, args.quick)
        converted = osp.join(args.work_dir, "tiny-vit_mixpro_mmseg-vit.pth")
        plan.append(Stage("convert", convert, dict(ckpt=ckpt, dst=converted), local=True,
                          after=("pretrain",) if "pretrain" in args.stages else ()))
        plan += finetune_stages(args, converted)
    return plan, results


def finetune_stages(args, converted: str) -> List[Stage]:
    """A fine-tune per downstream task and initialisation, the longer task first; the MixPro ones after the
    conversion of the pretrained checkpoint into ``converted``."""
    stages = []
    for task in sorted(downstream_tasks(args), key=LONGEST_FIRST.index):
        configs = SEG_CONFIGS if task == "segmentation" else DET_CONFIGS
        for key, config in configs.items():
            work_dir = osp.join(args.work_dir, f"{task}_{key}")
            stages.append(Stage(f"{task}/{key}", finetune,
                                dict(config=config, work_dir=work_dir, data_root=args.data_root,
                                     backbone_ckpt=converted if key == "mixpro" else None, quick=args.quick,
                                     task=task),
                                after=("convert",) if key == "mixpro" else (), work_dir=work_dir))
    return stages


def stage_results(args, runs: Dict[str, StageRun]) -> dict:
    """What the finished stages (name → their run) give for ``results.json``: pretraining, each fine-tune, the
    all-background floor, the schedule (pid, start, end)."""
    results = {}
    if "pretrain" in runs:
        results["pretrain"] = runs["pretrain"].result
    for task in downstream_tasks(args):
        results[task] = {key: runs[f"{task}/{key}"].result for key in INITS}
    if "segmentation" in args.stages:
        results["floor"] = dict(mIoU=all_background_miou(osp.join(args.data_root, "annotations", "validation")))
    results["schedule"] = dict(jobs=args.jobs, stages={
        name: dict(pid=run.pid, started=run.started, finished=run.finished) for name, run in runs.items()})
    return results


def write_results(work_dir: str, results: dict) -> None:
    """``results.md`` (title, table, note, times) and ``results.json`` in ``work_dir``; the text is printed too."""
    table = results_table(results)
    text = ("# Demo: MixPro pretraining on Fashion-MNIST → Segmenter and Mask R-CNN on the composite set (CPU)\n\n"
            + table + "\n" + SEEDED_NOTE + timing_lines(results))
    atomic_write_text(osp.join(work_dir, "results.md"), text)
    atomic_write_text(osp.join(work_dir, "results.json"), json.dumps(results, indent=2))
    print("\n" + text)
    print(f"Written: {osp.join(work_dir, 'results.md')} (and results.json, curve.png, maskmix_grid.png)")


def main(argv=None) -> dict:
    """``tools/demo.py``: run the stages, write ``results.md`` / ``results.json`` and return the results."""
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.time()
    with composite_run():
        plan, results = plan_stages(args)
        runs = run_stages(plan, jobs=args.jobs, initializer=prepare_worker)
    results.update(stage_results(args, runs))
    results["total_seconds"] = time.time() - t0
    write_results(args.work_dir, results)
    return results

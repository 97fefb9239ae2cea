"""``tools/reproduce.py --set downstream``: Fashion-MNIST backbones → Segmenter (linear, mask) and Mask R-CNN on
the composite set, per pretraining method and seed (the small-scale Tables 2–3).

Per seed S: the tiny ViTs of each pretraining method of :data:`INITS` (``PRETRAIN_ROOT/METHOD/seedS``, trained
when missing) and random initialisation, each fine-tuned with every head of :data:`HEADS` with
``randomness.seed = S``; segmentation is also tested multi-scale + flip. Work root W::

    W/finetune/<head>_<init>_seed<S>/          backbone.pth (converted), checkpoint, run.log, result.json
    W/test/<head>_<init>_seed<S>[_ms]/metrics.json   as tools/test.py writes it (read by paper_tables.read_metric)

A fine-tune with a complete ``result.json`` is not run again (a killed set continues where it stopped).
"""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from classification.engine import lifecycle
from classification.foundation.atomic import atomic_write_text
from classification.engine.config_check import load_config
from classification.foundation.host import ROOT
from classification.engine.launch import plain_metrics, prepare_config, prepare_test_config, write_metrics
from classification.experiments.composite_runs import composite_run, on_composite, prepare_worker
from classification.experiments.stages import Stage, run_stages
from classification.transfer.downstream_data.composite import all_background_miou, make_composite

from . import runs
from .estimates import hms
from .paper_tables import eval_dir, read_metric

# the paper's three methods and random initialisation, then the ViT mixing methods (docs/methods.md, "TL-Align" …
# "MergeMix"): their tiny-ViT Fashion-MNIST configs pretrain the backbones as the paper's do
INITS = ("random", "baseline", "transmix", "mixpro", "tlalign", "smmix", "tokenmix-area", "mergemix")
REFERENCE = "baseline"
DATA = dict(num_train=2000, num_val=300, size=64, seed=0, background_brightness=0.3, tint_min=128)
DATA_ROOT = osp.join(ROOT, "data", "composite-dim-64")
DATA_MARKER = "composite.json"
IMG_SIZE = (64, 64)
FINETUNE_RESULT = "result.json"


@dataclass(frozen=True)
class Head:
    """A downstream head: its fine-tune config, its multi-scale test config (None: none) and the metrics it
    reports (``metrics.json`` key → column, × ``scale``)."""

    key: str
    task: str
    config: str
    ms_config: Optional[str]
    columns: tuple
    scale: float = 1.0


_SEG = "configs/segmentation/segmenter-{}_tiny-vit_scratch_1xb16-1500i_composite-dim-64{}.py"
COCO_KEYS = (("box AP", "coco/bbox_mAP"), ("box AP50", "coco/bbox_mAP_50"), ("box AP75", "coco/bbox_mAP_75"),
             ("mask AP", "coco/segm_mAP"), ("mask AP50", "coco/segm_mAP_50"), ("mask AP75", "coco/segm_mAP_75"))
HEADS = {
    "linear": Head("linear", "segmentation", _SEG.format("linear", ""), _SEG.format("linear", "_ms"),
                   (("mIoU", "mIoU"),)),
    "mask": Head("mask", "segmentation", _SEG.format("mask", ""), _SEG.format("mask", "_ms"), (("mIoU", "mIoU"),)),
    "mask-rcnn": Head("mask-rcnn", "detection",
                      "configs/detection/mask-rcnn_tiny-vit_scratch_pyramid_1xb8-3e_composite-dim-64.py", None,
                      COCO_KEYS, 100.0),
}


def stem(head: str, init: str, seed: int) -> str:
    return f"{head}_{init}_seed{seed}"


def finetune_dir(work_root: str, head: str, init: str, seed: int) -> str:
    return osp.join(work_root, "finetune", stem(head, init, seed))


# --------------------------------------------------------------------------------------------------- data
def ensure_data(data_root: str = DATA_ROOT, quick: bool = False) -> str:
    """Generate the set's composite data into ``data_root`` unless it holds the same generation parameters
    (``composite.json``); ``quick``: 8 training / 4 validation images."""
    params = dict(DATA, num_train=8, num_val=4) if quick else dict(DATA)
    marker = osp.join(data_root, DATA_MARKER)
    try:
        with open(marker) as f:
            if json.load(f) == params:
                return data_root
    except (OSError, ValueError):
        pass
    if osp.isfile(marker):  # another set's: a generation killed below must not leave it beside a partial set
        os.remove(marker)
    make_composite(data_root, **params)
    atomic_write_text(marker, json.dumps(params, indent=1))
    return data_root


# --------------------------------------------------------------------------------------------------- stages
@contextlib.contextmanager
def output_to(path: str):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so child libraries too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def pretrain(method: str, seed: int, epochs: int, work_dir: str, cfg_options: Optional[dict]) -> dict:
    """A reproduction run (:func:`.runs.train_and_evaluate`), its output in ``work_dir/reproduce.log``."""
    os.makedirs(work_dir, exist_ok=True)
    with output_to(osp.join(work_dir, "reproduce.log")):
        return runs.train_and_evaluate(method, runs.config_path(method), seed, epochs, work_dir, cfg_options)


def _finetune_config(head: Head, seed: int, data_root: str, backbone: Optional[str], quick: bool,
                     config: Optional[str] = None):
    """``config`` (default: the head's) on ``data_root`` with ``randomness.seed = seed``, the backbone initialised
    from ``backbone`` (None: random), no validation loop; ``quick``: a few iterations at batch 2. Not yet prepared
    (:func:`classification.engine.launch.prepare_config` / ``prepare_test_config``)."""
    cfg = load_config(osp.join(ROOT, config or head.config))
    cfg.randomness = dict(cfg.get("randomness") or {}, seed=seed)
    if backbone is not None:
        cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=backbone)
    on_composite(cfg, data_root, head.task, quick)
    return cfg


def _test(cfg, checkpoint: str, test_dir: str, config: str) -> dict:
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg = prepare_test_config(cfg, checkpoint, work_dir=test_dir)
    metrics = plain_metrics(lifecycle.run(cfg, train=False, test=True).metrics)
    write_metrics(test_dir, config, checkpoint, metrics)
    return metrics


def finetune(head_key: str, init: str, seed: int, work_root: str, data_root: str,
             pretrained: Optional[str], quick: bool = False) -> dict:
    """Convert ``pretrained`` (None: random init) for the downstream backbone, train the head with seed ``seed``,
    test it (and multi-scale + flip for segmentation) into ``W/test/<stem>[_ms]/metrics.json``; writes and returns
    ``result.json`` (metrics, seconds, threads). Output goes to ``run.log`` in the fine-tune's work dir."""
    import torch
    from classification.transfer.convert import convert_file
    head = HEADS[head_key]
    name = stem(head_key, init, seed)
    work_dir = finetune_dir(work_root, head_key, init, seed)
    os.makedirs(work_dir, exist_ok=True)
    t0 = time.time()
    with output_to(osp.join(work_dir, "run.log")):
        backbone = None
        if pretrained is not None:
            backbone = osp.join(work_dir, "backbone.pth")
            print(convert_file(pretrained, backbone, "mmseg-vit", img_size=IMG_SIZE).format())
        cfg = prepare_config(_finetune_config(head, seed, data_root, backbone, quick), work_dir=work_dir)
        lifecycle.run(cfg)
        last = osp.join(work_dir, (f"iter_{cfg.train_cfg.max_iters}.pth" if head.task == "segmentation"
                                   else f"epoch_{cfg.train_cfg.max_epochs}.pth"))
        train_seconds = time.time() - t0
        tests = {"": head.config}
        if head.ms_config:
            tests["_ms"] = head.ms_config
        metrics = {}
        for suffix, config in tests.items():
            test_cfg = _finetune_config(head, seed, data_root, None, quick, config)
            metrics[suffix or "ss"] = _test(test_cfg, last, eval_dir(work_root, name + suffix), config)
    result = dict(head=head_key, init=init, seed=seed, pretrained=pretrained, checkpoint=last, metrics=metrics,
                  train_seconds=round(train_seconds, 1), run_seconds=round(time.time() - t0, 1),
                  threads=torch.get_num_threads(), quick=quick)
    atomic_write_text(osp.join(work_dir, FINETUNE_RESULT), json.dumps(result, indent=2))
    return result


def load_finetune(work_root: str, head: str, init: str, seed: int, quick: bool = False) -> Optional[dict]:
    """The fine-tune's ``result.json`` when it is complete (its test metrics.json files exist) and of the same
    size (``quick``), else None."""
    try:
        with open(osp.join(finetune_dir(work_root, head, init, seed), FINETUNE_RESULT)) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    suffixes = ("", "_ms") if HEADS[head].ms_config else ("",)
    complete = all(read_metric(work_root, stem(head, init, seed) + s, HEADS[head].columns[0][1])[0] is not None
                   for s in suffixes)
    return result if complete and result.get("quick", False) == quick else None


# --------------------------------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """The stages still to run and what is already there."""

    stages: List[Stage]
    pretrain_done: int
    finetune_done: int
    finetunes: int


def build_plan(seeds: Sequence[int], inits: Sequence[str], heads: Sequence[str], work_root: str, pretrain_root: str,
               epochs: int, data_root: str, quick: bool = False, force: bool = False,
               pretrain_options: Optional[dict] = None) -> Plan:
    """Pretraining runs without a result (for ``epochs``) first, then every fine-tune without a complete result
    (all with ``force``): random-init ones first (they need no pretraining), each pretrained one after its
    backbone's run."""
    stages, pretrain_done, finetune_done = [], 0, 0
    for init in inits:
        if init == "random":
            continue
        for seed in seeds:
            work_dir = runs.run_dir(pretrain_root, init, seed)
            if runs.load_result(work_dir, epochs) is not None:
                pretrain_done += 1
                continue
            stages.append(Stage(f"pretrain {init} seed {seed}", pretrain,
                                dict(method=init, seed=seed, epochs=epochs, work_dir=work_dir,
                                     cfg_options=pretrain_options), work_dir=work_dir))
    pending = {s.name for s in stages}
    for init in sorted(inits, key=lambda i: i != "random"):
        for seed in seeds:
            for head in heads:
                if not force and load_finetune(work_root, head, init, seed, quick) is not None:
                    finetune_done += 1
                    continue
                after = f"pretrain {init} seed {seed}"
                pretrained = None if init == "random" else osp.join(runs.run_dir(pretrain_root, init, seed),
                                                                    f"epoch_{epochs}.pth")
                stages.append(Stage(f"{stem(head, init, seed)}", finetune,
                                    dict(head_key=head, init=init, seed=seed, work_root=work_root,
                                         data_root=data_root, pretrained=pretrained, quick=quick),
                                    after=(after,) if after in pending else (),
                                    work_dir=finetune_dir(work_root, head, init, seed)))
    return Plan(stages, pretrain_done, finetune_done, len(seeds) * len(inits) * len(heads))


def run_plan(plan: Plan, jobs: int) -> None:
    """Run the plan's stages ``jobs`` at a time as a composite run (``composite_runs.composite_run`` here, its
    ``prepare_worker`` in each worker), one line per start / end with the elapsed time."""
    t0, done, total = time.time(), [0], len(plan.stages)

    def event(line: str) -> None:
        if "finished" in line:
            done[0] += 1
        print(f"{line.replace('[stages]', f'[{done[0]}/{total} done]')} — elapsed {hms(time.time() - t0)}",
              flush=True)

    with composite_run():
        run_stages(plan.stages, jobs=jobs, initializer=prepare_worker, on_event=event)


# --------------------------------------------------------------------------------------------------- results
def collect(work_root: str, pretrain_root: str, seeds: Sequence[int], inits: Sequence[str], heads: Sequence[str],
            epochs: int, quick: bool = False) -> dict:
    """Every finished fine-tune's metrics (read from its metrics.json files) and each backbone's Fashion-MNIST
    top-1: ``{"runs": [{head, init, seed, <column>: value, <column> +MS: value, run_seconds}], "pretrain":
    {init: {seed: top1}}, "span": seconds from the first run's start to the last run's end}`` (each run's end is
    its result.json's modification time, its start that minus its ``run_seconds``; None without runs)."""
    rows, times = [], []

    def timed(path: str, result: dict) -> None:
        if isinstance(result.get("run_seconds"), (int, float)) and osp.isfile(path):
            end = osp.getmtime(path)
            times.append((end - result["run_seconds"], end))

    for head in heads:
        spec = HEADS[head]
        for init in inits:
            for seed in seeds:
                result = load_finetune(work_root, head, init, seed, quick)
                if result is None:
                    continue
                timed(osp.join(finetune_dir(work_root, head, init, seed), FINETUNE_RESULT), result)
                row = dict(head=head, init=init, seed=seed, run_seconds=result.get("run_seconds"),
                           threads=result.get("threads"))
                for column, key in spec.columns:
                    row[column] = read_metric(work_root, stem(head, init, seed), key, spec.scale)[0]
                    if spec.ms_config:
                        row[column + " +MS"] = read_metric(work_root, stem(head, init, seed) + "_ms", key,
                                                           spec.scale)[0]
                rows.append(row)
    pretrain_top1 = {}
    for init in inits:
        for seed in seeds:
            result = None if init == "random" else runs.load_result(runs.run_dir(pretrain_root, init, seed), epochs)
            if result is not None:
                pretrain_top1.setdefault(init, {})[seed] = result["top1"]
                timed(osp.join(runs.run_dir(pretrain_root, init, seed), runs.RESULT_FILE), result)
    span = max(e for _, e in times) - min(b for b, _ in times) if times else None
    return dict(runs=rows, pretrain=pretrain_top1, span=span)


def floor_miou(data_root: str) -> float:
    return all_background_miou(osp.join(data_root, "annotations", "validation"))


def columns(head: str) -> List[str]:
    spec = HEADS[head]
    out = []
    for column, _ in spec.columns:
        out += [column, column + " +MS"] if spec.ms_config else [column]
    return out


def by_init(rows: Sequence[dict], head: str, column: str) -> Dict[str, Dict[int, float]]:
    """init → {seed: value} of one head's column."""
    out: Dict[str, Dict[int, float]] = {}
    for r in rows:
        if r["head"] == head and r.get(column) is not None:
            out.setdefault(r["init"], {})[r["seed"]] = r[column]
    return out

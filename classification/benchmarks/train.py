"""End-to-end training throughput, ``tools/benchmark.py train``: our training loop against timm's building blocks.

    python tools/benchmark.py train [--images N] [--data-root DIR] [--iters K] [--warmup W] [--workers W ...]
                                    [--config CONFIG ...] [--batch B] [--amp bf16] [--compile] [--device cuda]
                                    [--json PATH] [--quick]

On one synthetic ImageNet folder, at the same batch, input size, workers and precision: (a) our Runner as
``tools/train.py`` prepares it (:func:`classification.engine.launch.prepare_config`), ``--compile`` also compiled;
(b) the same with the DALI loader (skipped, with the reason, when unavailable); (c) timm's ``train.py`` pipeline; and
the data pipelines alone. img/s over a timed window after ``--warmup`` iterations, the data-wait share and the
per-image worker cost (uint8 vs float path). Details: docs/benchmarks.md, "End to end vs timm's training pipeline".
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from classification.benchmarks.common import WindowTimer, forever, free_memory, report, timed_loop
from classification.data.synthetic_imagenet import make_synthetic_imagenet
from classification.benchmarks.train_timm import run_timm, run_timm_data, timm_model_name
from classification.engine import lifecycle
from classification.engine.config_check import load_config
from classification.engine.distributed import release_loader_workers
from classification.foundation.host import ROOT, configure_threads, default_num_workers
from classification.engine.launch import prepare_config

__all__ = ["add_train_arguments", "bench_train"]

DEFAULT_CONFIG = "configs/classification/deit-s_baseline_8xb128-300e_in1k.py"
QUICK_CONFIG = "configs/classification/deit-t_baseline_8xb128-300e_in1k.py"
DALI_DATASET = "configs/classification/_base_/datasets/imagenet_dali_bs128.py"
QUICK = dict(images=64, classes=2, min_side=48, max_side=80, input_size=64, batch=8, warmup=1, iters=2, workers=[0])
FULL = dict(classes=100, min_side=300, max_side=500, input_size=224, iters=128)


# ----------------------------------------------------------------------------------------------- ours
class _RunnerTimer(Hook):
    """mmengine fetches the batch right before ``before_train_iter``."""
    priority = "LOWEST"

    def __init__(self, timer: WindowTimer):
        self.timer = timer

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.timer.fetched()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.timer.done()


# ----------------------------------------------------------------------------------------------- ours
def _our_config(config: str, s: argparse.Namespace, workers: int, classes: int, compile_backbone: bool,
                work_dir: str) -> Config:
    cfg = prepare_config(osp.join(ROOT, config), work_dir=work_dir, amp=s.amp, compile=compile_backbone)
    loader = cfg.train_dataloader
    loader.update(batch_size=s.batch, num_workers=workers, persistent_workers=workers > 0,
                  pin_memory=str(s.device).startswith("cuda"))
    loader.dataset.root = s.data_root
    loader.dataset.transform.input_size = s.input_size
    cfg.model.num_classes = classes
    if s.input_size != 224:
        cfg.model.backbone.img_size = s.input_size
    cfg.train_cfg = dict(by_epoch=False, max_iters=s.warmup + s.repeats, val_interval=10 ** 9)
    for key in ("val_dataloader", "val_cfg", "val_evaluator", "test_dataloader", "test_cfg", "test_evaluator"):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None
    cfg.log_processor.by_epoch = False
    cfg.log_level = "WARNING"
    return cfg


def run_ours(cfg: Config, s: argparse.Namespace) -> dict:
    """Train ``warmup + iters`` iterations of the Runner of ``cfg`` (:func:`classification.engine.lifecycle.run`);
    the timed window's numbers."""
    configure_threads(cfg)
    timer = WindowTimer(s.warmup, s.repeats, s.device)
    try:
        lifecycle.run(cfg, hooks=[_RunnerTimer(timer)])
    finally:
        free_memory(s.device)
    return timer.result(s.batch)


def run_our_data(cfg: Config, s: argparse.Namespace) -> dict:
    """Our loader + the data preprocessor on the device (host→device copy, normalisation, erasing), no model."""
    from mmengine.registry import MODELS
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    preprocessor = MODELS.build(cfg.data_preprocessor).to(s.device)
    timer = WindowTimer(s.warmup, s.repeats, s.device)
    try:
        timed_loop(forever(loader), lambda batch: preprocessor(batch, training=True), timer)
    finally:
        release_loader_workers(loader)
        free_memory(s.device)
    return timer.result(s.batch)


# ----------------------------------------------------------------------------------------------- worker cost
def worker_cost(root: str, images: int, input_size: int, batch: int) -> Dict[str, dict]:
    """Per-image CPU cost (ms) of one loader worker's job, float path vs uint8 path, in this process (one thread).

    Each of the first ``images`` training JPEGs goes through decode + the training transform of both paths,
    alternating, with the same seed for both (same crop, flip and RandAugment ops): ``float`` = timm's transform
    with ToTensor + Normalize + random erasing in the worker (``uint8=False``), ``uint8`` = the same ending in a
    uint8 tensor (``uint8=True``). ``collate`` adds ``default_collate`` of ``batch`` such samples per image."""
    import random
    from mmengine.dataset import default_collate
    from classification.data.imagenet import ImageNetFolder, decode_rgb
    from classification.data.transforms import build_transform
    paths = [p for p, _ in ImageNetFolder(root, "train").samples[:images]]
    transforms = {"float": build_transform(is_train=True, input_size=input_size),
                  "uint8": build_transform(is_train=True, input_size=input_size, uint8=True)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a loader worker runs one thread (torch sets it so in every worker)
    ms = {k: 0.0 for k in transforms}
    outputs = {k: [] for k in transforms}
    try:
        for transform in transforms.values():  # untimed first call of each path
            transform(decode_rgb(paths[0], paths[0]))
        for i, path in enumerate(paths):
            for name in sorted(transforms, reverse=bool(i % 2)):  # alternate which path goes first
                random.seed(i)
                np.random.seed(i)
                torch.manual_seed(i)
                t0 = time.perf_counter()
                out = transforms[name](decode_rgb(path, path))
                ms[name] += (time.perf_counter() - t0) * 1e3
                if len(outputs[name]) < batch:
                    outputs[name].append(dict(inputs=out, data_samples=0))
        result = {}
        for name in transforms:
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                default_collate(outputs[name])
                runs.append((time.perf_counter() - t0) * 1e3 / len(outputs[name]))
            collate = statistics.median(runs)
            per_image = ms[name] / len(paths)
            result[name] = dict(transform_ms=per_image, collate_ms=collate, total_ms=per_image + collate,
                                bytes_per_image=outputs[name][0]["inputs"].nbytes)
    finally:
        torch.set_num_threads(threads)
    return result


# ----------------------------------------------------------------------------------------------- DALI
def dali_skip_reason(dali_dataset: str) -> Optional[str]:
    """Why the DALI pipeline cannot run here (None when it can)."""
    if importlib.util.find_spec("nvidia") is None or importlib.util.find_spec("nvidia.dali") is None:
        return "DALI not installed: skipped"
    if not osp.isfile(osp.join(ROOT, dali_dataset)):
        return f"DALI dataset config {dali_dataset} not found: skipped"
    return None


def _with_dali_loader(cfg: Config, s: argparse.Namespace, workers: int) -> Config:
    """``cfg`` with the DALI dataset base's train_dataloader (:class:`classification.data.dali.DALIImageNet` over
    the synthetic folder): same batch and input size, DALI's host threads = the worker count (its loader runs in the
    main process, ``num_workers=0``), ops on the GPU when ``--device`` is CUDA."""
    loader = load_config(osp.join(ROOT, s.dali_dataset)).train_dataloader
    loader.batch_size = s.batch
    loader.dataset.update(batch_size=s.batch, input_size=s.input_size, num_threads=max(1, workers),
                          device="gpu" if str(s.device).startswith("cuda") else "cpu")
    loader.dataset.dataset.root = s.data_root
    cfg.train_dataloader = loader
    return cfg


# ----------------------------------------------------------------------------------------------- CLI
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true",
                   help="CPU smoke run in seconds: 64 images of 48-80 px, DeiT-tiny at 64 px, batch 8, 2 iterations")
    p.add_argument("--images", type=int, help="synthetic training images (default: warm-up + timed iterations in "
                                              "one epoch; 64 with --quick)")
    p.add_argument("--data-root", help="synthetic ImageNet folder to make or reuse (default under the temp dir)")
    p.add_argument("--config", nargs="+", help=f"our config(s) (default {DEFAULT_CONFIG}; --quick: {QUICK_CONFIG})")
    p.add_argument("--iters", dest="repeats", type=int, help=f"timed iterations per pipeline (default "
                                                             f"{FULL['iters']}; --quick: {QUICK['iters']})")
    p.add_argument("--warmup", type=int, help="discarded iterations first (default 10 + 2 per worker; --quick: 1)")
    p.add_argument("--workers", type=int, nargs="+", help="loader workers; several values: every pipeline at each "
                                                          "(default: the config's, capped by "
                                                          "classification.foundation.host)")
    p.add_argument("--batch", type=int, help="batch size (default 128; --quick: 8)")
    p.add_argument("--input-size", type=int, help="input side (default 224; --quick: 64)")
    p.add_argument("--amp", choices=["bf16"], help="bf16 autocast in every pipeline (default on CUDA)")
    p.add_argument("--no-amp", action="store_true", help="fp32 even on CUDA")
    p.add_argument("--compile", action="store_true", help="also run ours with the backbone compiled")
    p.add_argument("--worker-images", type=int, help="images for the per-image worker cost, float vs uint8 path "
                                                     "(default 256; --quick: 16; 0 skips it)")
    p.add_argument("--worker-cost-only", action="store_true", help="only the per-image worker cost (CPU)")
    p.add_argument("--dali-dataset", default=DALI_DATASET, help=f"DALI dataset base (default {DALI_DATASET})")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def _resolve(args: argparse.Namespace) -> None:
    """Fill the defaults that depend on --quick and on each other; ValueError for impossible settings."""
    quick = args.quick
    if quick and str(args.device).startswith("cuda"):
        raise ValueError("--quick is the CPU smoke run: drop --device cuda")
    if str(args.device).startswith("cuda") != torch.cuda.is_available() and not args.worker_cost_only:
        runner_device = "cuda" if torch.cuda.is_available() else "cpu"
        raise ValueError(f"--device {args.device}: our Runner trains on {runner_device} on this machine, and every "
                         f"pipeline must run on the same device")
    args.config = args.config or [QUICK_CONFIG if quick else DEFAULT_CONFIG]
    args.batch = args.batch or (QUICK["batch"] if quick else 128)
    args.input_size = args.input_size or (QUICK["input_size"] if quick else FULL["input_size"])
    args.repeats = args.repeats or (QUICK["iters"] if quick else FULL["iters"])
    if args.worker_images is None:
        args.worker_images = 16 if quick else 256
    if args.workers is None:
        configured = load_config(osp.join(ROOT, args.config[0])).train_dataloader.num_workers
        args.workers = QUICK["workers"] if quick else [default_num_workers(configured)]
    if args.warmup is None:
        args.warmup = QUICK["warmup"] if quick else 10 + 2 * max(args.workers)
    if args.amp is None and not args.no_amp and str(args.device).startswith("cuda"):
        args.amp = "bf16"
    if args.no_amp:
        args.amp = None
    if args.repeats < 1 or args.warmup < 1 or args.batch < 2 or min(args.workers) < 0:
        raise ValueError(f"need --iters >= 1, --warmup >= 1, --batch >= 2 and --workers >= 0; got {args.repeats}, "
                         f"{args.warmup}, {args.batch}, {args.workers}")
    needed = (args.warmup + args.repeats) * args.batch
    args.images = args.images or (QUICK["images"] if quick else args.worker_images if args.worker_cost_only
                                  else needed)
    if args.images < args.batch:
        raise ValueError(f"--images {args.images} < --batch {args.batch}: no full batch")
    size = "quick" if quick else "full"
    args.data_root = args.data_root or osp.join(tempfile.gettempdir(), f"mixpro-synthetic-imagenet-{size}-"
                                                                       f"{args.images}")


def _make_data(args: argparse.Namespace) -> dict:
    spec = QUICK if args.quick else FULL
    classes = min(spec["classes"], max(2, args.images // 64))
    per_class = math.ceil(args.images / classes)
    t0 = time.perf_counter()
    made = make_synthetic_imagenet(args.data_root, classes, per_class, 0, spec["min_side"], spec["max_side"])
    return dict(root=args.data_root, classes=classes, images=classes * per_class, made=made,
                seconds=time.perf_counter() - t0)


def _run_pipelines(args: argparse.Namespace, classes: int, dali_reason: Optional[str]):
    """Every pipeline at every worker count → (stats by pipeline, table rows)."""
    stats: Dict[str, dict] = {}
    rows: List[list] = []
    with tempfile.TemporaryDirectory(prefix="mixpro-train-bench-") as work:
        for workers in args.workers:
            base_cfg = _our_config(args.config[0], args, workers, classes, False, work)
            configure_threads(base_cfg)  # tools/train.py's thread count, for every pipeline at this worker count
            model_name = timm_model_name(base_cfg)
            drop_path = float(base_cfg.model.backbone.get("drop_path_rate", 0.0))
            runs = {f"data: ours (loader + device preprocessor) w{workers}": lambda: run_our_data(base_cfg, args),
                    f"data: timm (loader + prefetcher) w{workers}": lambda: run_timm_data(args, workers, classes)}
            for config in args.config:
                name = osp.splitext(osp.basename(config))[0]
                runs[f"(a) ours {name} w{workers}"] = (
                    lambda c=config: run_ours(_our_config(c, args, workers, classes, False, work), args))
                if args.compile:
                    runs[f"(a) ours {name} --compile w{workers}"] = (
                        lambda c=config: run_ours(_our_config(c, args, workers, classes, True, work), args))
                if dali_reason is None:
                    runs[f"(b) ours {name} + DALI w{workers}"] = (lambda c=config: run_ours(
                        _with_dali_loader(_our_config(c, args, workers, classes, False, work), args, workers), args))
            runs[f"(c) timm {model_name} w{workers}"] = lambda: run_timm(args, workers, classes, model_name,
                                                                         drop_path)
            for key, run in runs.items():
                stats[key] = dict(_attempt(key, run), workers=workers)
            reference = stats[f"(c) timm {model_name} w{workers}"].get("img_per_s")
            data_ref = stats[f"data: timm (loader + prefetcher) w{workers}"].get("img_per_s")
            for key in runs:
                st = stats[key]
                if "error" in st:
                    rows.append([key, workers, "failed", st["error"], "", ""])
                    continue
                ref = data_ref if key.startswith("data:") else reference
                st["ratio_to_timm"] = st["img_per_s"] / ref if ref else None
                rows.append([key, workers, f"{st['s_per_iter']:.4f}", f"{st['img_per_s']:.0f}",
                             f"{st['ratio_to_timm']:.2f}x" if ref else "-", f"{100 * st['data_wait_share']:.0f}%"])
    return stats, rows


def _attempt(key: str, run: Callable[[], dict]) -> dict:
    """One pipeline; its result is printed at once (a run cut short keeps what it measured). A failure is recorded
    as ``{'error': ...}`` and the other pipelines still run."""
    t0 = time.perf_counter()
    try:
        result = run()
    except Exception as err:  # noqa: BLE001  (reported in the table; the comparison goes on)
        message = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        print(f"[train benchmark] {key}: FAILED after {time.perf_counter() - t0:.0f} s: {message}", flush=True)
        return dict(error=message)
    print(f"[train benchmark] {key}: {result['img_per_s']:.0f} img/s, {result['s_per_iter']:.4f} s/iteration, "
          f"data wait {100 * result['data_wait_share']:.0f}% ({time.perf_counter() - t0:.0f} s)", flush=True)
    return result


COST_COLUMNS = ["worker path (one thread)", "decode + transform ms/img", "collate ms/img", "total ms/img", "bytes/img"]
COST_LABELS = {"float": "float: ToTensor + Normalize + erasing in the worker",
               "uint8": "uint8: normalisation + erasing on the device"}


def _cost_rows(cost: Dict[str, dict]) -> List[list]:
    return [[COST_LABELS[k], f"{c['transform_ms']:.2f}", f"{c['collate_ms']:.3f}", f"{c['total_ms']:.2f}",
             c["bytes_per_image"]] for k, c in cost.items()]


def bench_train(args: argparse.Namespace) -> dict:
    """Run every pipeline (module docstring) and the worker cost, print the Markdown report and return it."""
    try:
        _resolve(args)
    except ValueError as err:
        raise SystemExit(f"tools/benchmark.py train: {err}") from None
    data = _make_data(args)
    classes, per_epoch = data["classes"], data["images"] // args.batch
    spec = QUICK if args.quick else FULL
    notes = [f"data: {data['images']} synthetic JPEGs of {spec['min_side']}-{spec['max_side']} px, {classes} classes, "
             f"at {data['root']} ({'made' if data['made'] else 'reused'})"]
    cost = worker_cost(args.data_root, args.worker_images, args.input_size, args.batch) if args.worker_images else {}
    cost_note = (f"worker cost: the first {min(args.worker_images, data['images'])} images through both paths with "
                 f"the same seeds (same crops and RandAugment ops), one thread; collate of {args.batch}; "
                 + (f"uint8 / float = {cost['uint8']['total_ms'] / cost['float']['total_ms']:.2f}x" if cost else ""))
    if args.worker_cost_only:
        return report(args, dict(subcommand="train", settings=f"train --worker-cost-only: {args.input_size}² crops",
                                 columns=COST_COLUMNS, rows=_cost_rows(cost), notes=notes + [cost_note],
                                 data=dict(dataset=data, worker_cost=cost)))
    dali_reason = dali_skip_reason(args.dali_dataset)
    stats, rows = _run_pipelines(args, classes, dali_reason)
    notes[0] += (f"; {per_epoch} batches per epoch, {args.warmup + args.repeats} iterations per pipeline"
                 + ("" if per_epoch >= args.warmup + args.repeats else " (epoch restarts fall inside the window)"))
    notes += ["ratio: img/s over timm's at the same worker count (data rows: over timm's loader alone)",
              "data wait: share of the timed window the host spent waiting for the next batch"]
    if dali_reason is not None:
        notes.append(f"(b) {dali_reason}")
    if cost:
        notes += ["", "| " + " | ".join(COST_COLUMNS) + " |", "|" + "---|" * len(COST_COLUMNS)]
        notes += ["| " + " | ".join(str(c) for c in row) + " |" for row in _cost_rows(cost)] + [cost_note]
    settings = (f"train: {', '.join(args.config)} vs timm, B={args.batch}, {args.input_size}², "
                f"{'bf16 autocast' if args.amp else 'fp32'}, device={args.device}, workers {args.workers}; "
                f"{args.warmup} warm-up then {args.repeats} timed iterations per pipeline")
    return report(args, dict(subcommand="train", settings=settings,
                             columns=["pipeline", "workers", "s / iteration", "img/s", "ratio to timm", "data wait"],
                             rows=rows, notes=notes,
                             data=dict(stats=stats, dataset=data, dali=dali_reason or "ran", worker_cost=cost)))

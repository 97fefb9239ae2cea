"""The one config API of every run, and the command lines ``tools/train.py`` / ``tools/test.py`` over it.

:func:`prepare_config` (training) and :func:`prepare_test_config` (evaluation) take a config file or an edited Config
and keyword options (the tools' flags), check overrides and values before anything is built (mistakes are one-line
:class:`~classification.foundation.errors.UserError`) and return the Config that
:func:`classification.engine.lifecycle.run` builds, runs and ends cleanly. ``main`` / ``run_test`` (the only users of
argparse) also install the weights-only checkpoint loader, ignore :data:`UPSTREAM_WARNINGS` while they run
(:func:`upstream_warnings_ignored`) and, for multi-process runs on a host without CUDA, start a gloo process group
(:func:`classification.engine.distributed.init_distributed`).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import numbers
import os
import os.path as osp
import re
import warnings
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional, Sequence, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from classification.engine import lifecycle
from classification.foundation.atomic import atomic_write_text
from classification.foundation.checkpoints import install_safe_checkpoint_loading
from classification.engine.compile_hook import CompileBackboneHook
from classification.engine.config_check import (apply_cfg_options, check_batch_sizes, check_cache_sampler,
                                                check_class_counts, check_data_roots, check_training_options,
                                                load_config, validate_training_config)
from classification.engine.distributed import init_distributed
from classification.engine.hooks import RunSummaryHook
from classification.foundation.errors import MissingPathError, UserError
from classification.foundation.host import adapt_config_to_host, apply_default_num_workers, configure_threads
from classification.engine.preemption import add_preemption_hook

TRAIN_USAGE = """Train any MixPro config (classification, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--epochs N] [--resume [auto|CKPT]] [--amp {fp16,bf16}]
                          [--compile] [--partial-load PATTERN ...] [--vis {tensorboard,wandb} ...] [--show-config]
                          [--cfg-options key=value ...] [--launcher {none,pytorch,slurm}]

Writes into the work dir (default work_dirs/<config name>): the full config (<config name>.py), checkpoints
(epoch_N.pth, best_*.pth, last_checkpoint; preempted.pth after a SIGTERM/SIGUSR1/Ctrl-C stop), curve.png and
curve.json, and <timestamp>/<timestamp>.log (the whole log) with <timestamp>/vis_data/scalars.json (every logged value,
label-policy statistics included; --vis tensorboard adds TensorBoard event files there, --vis wandb a W&B run).
Multi-GPU / multi-process: tools/dist_train.sh CONFIG GPUS (torchrun), tools/slurm_train.sh. On a host without CUDA
the distributed launch uses gloo.
"""

TEST_USAGE = """Evaluate a checkpoint with a config's test set and evaluator (classification: top-1/top-5).

    python tools/test.py CONFIG CHECKPOINT [--ema] [--work-dir DIR] [--show-config] [--cfg-options ...]
                         [--launcher {none,pytorch,slurm}]

--ema evaluates the checkpoint's EMA weights. Prints the metrics and writes them to <work-dir>/metrics.json (default
work dir: work_dirs/<config name>/test); mmengine also logs them to <work-dir>/<timestamp>/<timestamp>.log and
<timestamp>.json.
"""

METRICS_FILE = "metrics.json"

# Known harmless warnings of the pinned stack (mmengine 0.10.7, mmseg 1.2.2), each ignored by its message where the
# module that raises it raises it; everything else, our own warnings included, still shows.
UPSTREAM_WARNINGS = [
    # mmengine's utils.package_utils.is_installed imports and reloads pkg_resources (deprecated by setuptools 81; we
    # pin setuptools < 82 for mmcv's build) whenever a config names an mmseg:: / mmdet:: base; the reloaded copy's
    # warning is attributed to importlib. Replaced by importlib.metadata in open-mmlab/mmengine#1676 (after 0.10.7)
    ("pkg_resources is deprecated as an API", "mmengine.utils.package_utils"),
    ("pkg_resources is deprecated as an API", "importlib"),
    # mmseg's decode heads build their losses with its own deprecated build_loss (open-mmlab/mmsegmentation#3587,
    # after 1.2.2)
    ("``build_loss`` would be deprecated soon", "mmseg.models.builder"),
    # mmseg's CrossEntropyLoss warns whenever avg_non_ignore is False: its default and the reference recipes' setting
    ("Default ``avg_non_ignore`` is False", "mmseg.models.losses.cross_entropy_loss"),
    # mmseg's default runtime adds SegVisualizationHook with draw=False (no pictures during validation, as intended)
    ("The draw is False, it means that the hook for visualization will not take effect",
     "mmseg.engine.hooks.visualization_hook"),
    # mmseg's LoadAnnotations warns whenever reduce_zero_label is given, as the reference pipelines (and ours) do
    ("`reduce_zero_label` will be deprecated", "mmseg.datasets.transforms.loading"),
    # torch's DataLoader when a GPU config (pin_memory=True, e.g. the ImageNet folder configs) runs on a CPU-only
    # host: pinning is skipped, nothing else changes
    ("'pin_memory' argument is set as true but no accelerator is found", "torch.utils.data.dataloader"),
]


def filter_upstream_warnings() -> None:
    """Ignore the warnings of :data:`UPSTREAM_WARNINGS` (each by message and module) from now on, process-wide: for a
    process that exists to run (a stage worker of the experiments); a run inside a longer-lived process scopes them
    with :func:`upstream_warnings_ignored`. Importing the package does neither."""
    for message, module in UPSTREAM_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=UserWarning,
                                module=re.escape(module) + "$")


@contextmanager
def upstream_warnings_ignored() -> Iterator[None]:
    """Within: :func:`filter_upstream_warnings`; on exit the warning filters are those of before
    (``warnings.catch_warnings``)."""
    with warnings.catch_warnings():
        filter_upstream_warnings()
        yield


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config keys: a.b=value (a key the config lacks is refused unless what the "
                             "dict is built into takes it)")
    parser.add_argument("--show-config", action="store_true",
                        help="print the full config before the run (it is always written to the work dir)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)


def parse_args(argv=None) -> argparse.Namespace:
    """Options of ``tools/train.py`` (``argv=None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=TRAIN_USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    parser.add_argument("--epochs", type=int,
                        help="train N epochs: the whole schedule (warm-up, cosine) shortened to end there "
                             "(epoch-based configs)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="resume: 'auto' (the newest checkpoint in the work dir) or a checkpoint path")
    parser.add_argument("--amp", choices=["fp16", "bf16"], help="automatic mixed precision")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the backbone (classification.engine.compile_hook); slow first iterations")
    parser.add_argument("--vis", nargs="+", choices=sorted(VIS_BACKENDS), default=[],
                        help="also log every logged value (loss, lr, label-policy statistics, validation) to "
                             "TensorBoard (event files in <work-dir>/<timestamp>/vis_data) and / or Weights & Biases")
    parser.add_argument("--partial-load", nargs="+", metavar="PATTERN",
                        help="with load_from (--cfg-options load_from=CKPT): model keys that may keep their initial "
                             "values, e.g. backbone.head for a head of other classes (sets load_from_partial)")
    _add_common_options(parser)
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def shorten_schedule(cfg, epochs: int, keep_val_interval: bool = False) -> None:
    """Train for ``epochs``: epoch-based schedulers that end at the config's last epoch end at the new one (a cosine's
    ``T_max`` is dropped, so mmengine's default ``end − begin`` follows), ones that would start at or after it are
    dropped (the warm-up keeps its length); validation once, at the end, unless ``keep_val_interval`` (mmengine
    validates after the last epoch anyway)."""
    original = cfg.train_cfg.max_epochs
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    kept = []
    for sched in schedulers:
        sched = dict(sched)
        if sched.get("by_epoch", True) and "end" in sched:
            begin, end = sched.get("begin", 0), sched["end"]
            if end >= original or end > epochs:
                end = epochs
            if begin >= end:
                continue
            sched["end"] = end
            sched.pop("T_max", None)
        kept.append(sched)
    cfg.param_scheduler = kept
    cfg.train_cfg.max_epochs = epochs
    if not keep_val_interval:
        cfg.train_cfg.val_interval = epochs


def _schedule_length(cfg, epochs: Optional[int], cfg_options: Optional[Mapping]) -> None:
    """``epochs`` (the whole schedule), or a warning when ``train_cfg.max_epochs`` alone leaves the lr schedule
    running past the new end."""
    loop = cfg.get("train_cfg") or {}
    overridden = "train_cfg.max_epochs" in (cfg_options or {})
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs!r}")
        if not loop.get("by_epoch", True) or "max_epochs" not in loop:
            raise UserError(f"--epochs: {cfg.filename} trains by iterations (train_cfg.max_iters); shorten it with "
                            f"--cfg-options train_cfg.max_iters=N and its param_scheduler ends")
        if overridden:
            raise UserError("--epochs and --cfg-options train_cfg.max_epochs both set the length: use --epochs, "
                            "which also shortens the lr schedule")
        shorten_schedule(cfg, epochs, keep_val_interval=True)
        return
    schedulers = cfg.get("param_scheduler") or []
    schedulers = [schedulers] if isinstance(schedulers, dict) else schedulers
    ends = [s["end"] for s in schedulers if s.get("by_epoch", True) and isinstance(s.get("end"), int)]
    if overridden and ends and max(ends) > loop.max_epochs:
        print_log(f"train_cfg.max_epochs={loop.max_epochs} shortens the run but not its lr schedule, which still "
                  f"ends at epoch {max(ends)} (the run stops part-way through it); use --epochs "
                  f"{loop.max_epochs} to shorten the whole schedule", logger="current", level=logging.WARNING)


# --vis NAME: mmengine's visualisation backend and the package it needs
VIS_BACKENDS = {"tensorboard": ("TensorboardVisBackend", "tensorboard"), "wandb": ("WandbVisBackend", "wandb")}


def add_vis_backends(cfg, names: Sequence[str]) -> None:
    """Add mmengine's visualisation backends ``names`` (keys of :data:`VIS_BACKENDS`) to ``cfg.visualizer``, next
    to the ones it has (mmengine's default: ``LocalVisBackend``, the ``scalars.json`` file). The LoggerHook hands them
    every value it logs, the label-policy statistics among them; a W&B run is named after the work dir, in project
    'mixpro'."""
    if not names:
        return
    visualizer = dict(cfg.get("visualizer") or dict(type="Visualizer"))
    backends = [dict(b) for b in visualizer.get("vis_backends") or [dict(type="LocalVisBackend")]]
    for name in names:
        if name not in VIS_BACKENDS:
            raise UserError(f"--vis {name}: choose from {', '.join(sorted(VIS_BACKENDS))}")
        kind = VIS_BACKENDS[name][0]
        if not any(b.get("type") == kind for b in backends):
            backend = dict(type=kind)
            if name == "wandb":
                backend["init_kwargs"] = dict(project="mixpro", name=osp.basename(osp.normpath(cfg.work_dir)))
            backends.append(backend)
    visualizer["vis_backends"] = backends
    cfg.visualizer = visualizer


def check_vis_packages(names: Sequence[str]) -> None:
    """UserError naming the package a ``--vis`` backend needs when it is not installed."""
    for name in names:
        package = VIS_BACKENDS.get(name, (None, None))[1]
        if package and importlib.util.find_spec(package) is None:
            raise UserError(f"--vis {name} needs the '{package}' package, which is not installed: pip install "
                            f"{package}")


def _partial_load(cfg, patterns: Optional[Sequence[str]]) -> None:
    if patterns:
        cfg.load_from_partial = list(patterns)
    if cfg.get("load_from_partial"):
        if cfg.get("resume"):
            raise UserError("partial loading (--partial-load / load_from_partial) applies to load_from; a resume "
                            "restores a run exactly")
        if not cfg.get("load_from"):
            raise UserError("--partial-load / load_from_partial without load_from: set --cfg-options load_from=CKPT")


def _loaded(config: Union[str, Config], cfg_options: Optional[Mapping]) -> Config:
    """``config`` loaded (a path) or as given (a Config), with ``cfg_options`` checked and applied."""
    cfg = load_config(config) if isinstance(config, str) else config
    apply_cfg_options(cfg, cfg_options)
    return cfg


def _default_work_dir(cfg, *parts: str) -> str:
    return osp.join("work_dirs", osp.splitext(osp.basename(cfg.filename or "run"))[0], *parts)


def prepare_config(config: Union[str, Config], *, work_dir: Optional[str] = None,
                   cfg_options: Optional[Mapping] = None, epochs: Optional[int] = None, amp: Optional[str] = None,
                   resume: Optional[str] = None, compile: bool = False, partial_load: Optional[Sequence[str]] = None,
                   launcher: str = "none", seed: Optional[int] = None, vis: Sequence[str] = ()) -> Config:
    """The training config ``tools/train.py`` runs (:func:`classification.engine.lifecycle.run`). ``config``: a file,
    or a Config the caller edited (changed in place). Applied: ``cfg_options`` (checked), ``epochs`` (the whole
    schedule shortened to end there, val interval kept; epoch-based configs), ``work_dir`` (default: the config's,
    else ``work_dirs/<config name>``), ``seed`` (``randomness.seed``), ``amp`` ('fp16' | 'bf16': mmengine's AMP
    optimiser wrapper, CUDA only), ``resume`` ('auto' or a checkpoint), ``partial_load`` (key patterns a
    ``load_from`` may miss), ``compile`` (the backbone compiled), ``launcher`` (CPU-only DDP), ``vis`` (TensorBoard /
    W&B backends, :func:`add_vis_backends`), the loader-worker cap,
    the preemption and run-summary hooks; then validated (loop / optimiser values, the model type's own training checks).
    Raises UserError / MissingPathError / ValueError. Data folders are checked by :func:`main`
    (:func:`classification.engine.config_check.check_data_roots`)."""
    cfg = _loaded(config, cfg_options)
    check_training_options(cfg)
    check_class_counts(cfg, ("train_dataloader", "val_dataloader"), ("val_evaluator",))
    _schedule_length(cfg, epochs, cfg_options)
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get("work_dir") or _default_work_dir(cfg)
    check_vis_packages(vis)
    add_vis_backends(cfg, vis)
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=seed)
    if amp:
        if not torch.cuda.is_available():
            raise UserError(f"--amp {amp} needs a GPU: mmengine's AmpOptimWrapper runs on CUDA/NPU/MLU only; "
                             f"train in fp32 on the CPU")
        wrapper = cfg.optim_wrapper
        wrapper.type = "GuardedAmpOptimWrapper" if wrapper.get("type") == "GuardedOptimWrapper" else "AmpOptimWrapper"
        wrapper.dtype = "bfloat16" if amp == "bf16" else "float16"
        # fp16 needs a dynamic loss scale; bf16 has fp32's exponent range and needs none (mmengine would otherwise
        # build a dynamic GradScaler whose scale reads synchronise with the GPU every step)
        wrapper.setdefault("loss_scale", "dynamic" if amp == "fp16" else dict(enabled=False))
    if resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif resume:
        if not osp.isfile(resume):
            raise MissingPathError(f"checkpoint to resume from not found: {resume}")
        cfg.resume, cfg.load_from = True, resume
    elif cfg.get("load_from") and not osp.isfile(cfg.load_from):
        raise MissingPathError(f"load_from checkpoint not found: {cfg.load_from}")
    _partial_load(cfg, partial_load)
    if compile:
        cfg.custom_hooks = list(cfg.get("custom_hooks") or []) + [dict(type=CompileBackboneHook.__name__)]
    adapt_config_to_host(cfg, launcher)
    apply_default_num_workers(cfg)  # leave cores to this process (classification.foundation.host)
    add_preemption_hook(cfg)  # SIGTERM/SIGUSR1 (and Ctrl-C): checkpoint, exit 75 / 130 (engine.preemption)
    _add_summary_hook(cfg)
    validate_training_config(cfg)
    check_cache_sampler(cfg)
    return cfg


def _add_summary_hook(cfg) -> None:
    hooks = list(cfg.get("custom_hooks") or [])
    if not any(h.get("type") in (RunSummaryHook.__name__, RunSummaryHook) for h in hooks):
        hooks.append(dict(type=RunSummaryHook.__name__))
    cfg.custom_hooks = hooks


def _start(args: argparse.Namespace) -> None:
    install_safe_checkpoint_loading()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    init_distributed(args.launcher)


def _show(cfg, args: argparse.Namespace) -> None:
    if args.show_config:
        print(cfg.pretty_text, flush=True)


def main(argv=None) -> None:
    """``tools/train.py``: build the config, train, shut data-loader workers and the process group down cleanly."""
    args = parse_args(argv)
    with upstream_warnings_ignored():
        _start(args)
        cfg = prepare_config(args.config, work_dir=args.work_dir, cfg_options=args.cfg_options, epochs=args.epochs,
                             amp=args.amp, resume=args.resume, compile=args.compile, partial_load=args.partial_load,
                             launcher=args.launcher, vis=args.vis)
        check_data_roots(cfg, ("train_dataloader", "val_dataloader"))
        _show(cfg, args)
        configure_threads(cfg)
        lifecycle.run(cfg)


def parse_test_args(argv=None) -> argparse.Namespace:
    """Options of ``tools/test.py``."""
    parser = argparse.ArgumentParser(description=TEST_USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir")
    parser.add_argument("--ema", action="store_true",
                        help="evaluate the checkpoint's EMA weights (timm's 'state_dict_ema', DeiT's 'model_ema'; an "
                             "EMAHook checkpoint's state_dict already holds them)")
    _add_common_options(parser)
    return parser.parse_args(argv)


def prepare_test_config(config: Union[str, Config], checkpoint: str, *, work_dir: Optional[str] = None,
                        cfg_options: Optional[Mapping] = None, launcher: str = "none", ema: bool = False) -> Config:
    """The evaluation config ``tools/test.py`` runs: ``config`` (a file, or a Config changed in place) with
    ``cfg_options`` (checked), ``load_from`` the checkpoint (strictly: no partial loading; ``ema``: its EMA weights,
    ``load_from_ema``), no resume, work dir
    ``work_dirs/<config name>/test`` unless given, host adaptation, the loader-worker cap and the run-summary hook.
    MissingPathError for a missing checkpoint."""
    cfg = _loaded(config, cfg_options)
    check_batch_sizes(cfg, ("test_dataloader",))
    check_class_counts(cfg, ("test_dataloader",), ("test_evaluator",))
    if not osp.isfile(checkpoint):
        raise MissingPathError(f"checkpoint not found: {checkpoint}")
    cfg.launcher = launcher
    cfg.work_dir = work_dir or _default_work_dir(cfg, "test")
    cfg.load_from, cfg.resume = checkpoint, False
    cfg.pop("load_from_partial", None)
    cfg.load_from_ema = bool(ema)
    adapt_config_to_host(cfg, launcher)
    apply_default_num_workers(cfg)
    _add_summary_hook(cfg)
    check_cache_sampler(cfg)
    return cfg


def plain_metrics(metrics: dict) -> dict:
    """The metrics as Python numbers (numpy / torch scalars converted), floats rounded to 4 decimals."""
    plain = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = round(float(value), 4)
        plain[key] = value
    return plain


def write_metrics(work_dir: str, config: str, checkpoint: str, metrics: dict) -> str:
    """``<work_dir>/metrics.json``: ``{"config", "checkpoint", "metrics": {name: value}}``; returns its path."""
    path = osp.join(work_dir, METRICS_FILE)
    atomic_write_text(path, json.dumps(dict(config=config, checkpoint=checkpoint, metrics=metrics), indent=2) + "\n")
    return path


def run_test(argv=None) -> dict:
    """``tools/test.py``: evaluate, print the metrics as plain numbers, write ``<work_dir>/metrics.json`` (rank 0) and
    return the metrics."""
    args = parse_test_args(argv)
    with upstream_warnings_ignored():
        _start(args)
        cfg = prepare_test_config(args.config, args.checkpoint, work_dir=args.work_dir, cfg_options=args.cfg_options,
                                  launcher=args.launcher, ema=args.ema)
        check_data_roots(cfg, ("test_dataloader",))
        _show(cfg, args)
        finished = lifecycle.run(cfg, train=False, test=True)
    metrics = plain_metrics(finished.metrics)
    if finished.rank == 0:
        path = write_metrics(finished.work_dir, args.config, args.checkpoint, metrics)
        print("  ".join(f"{k}: {v}" for k, v in metrics.items()))
        print(f"metrics written to {path}")
    return metrics


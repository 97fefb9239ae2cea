"""Runs of the reproduction: the methods (``configs/classification/tiny-vit_{METHOD}_1xb128-20e_fmnist.py``), the
epoch budget, one run (train, test, top-1 under 50% patch drop; prepared and run as ``tools/train.py`` runs it) in its
own process, the ``result.json`` that marks a finished run, and the loop over (method, seed) pairs.

Time estimates come only from measured runs: the ``train_seconds`` / ``run_seconds`` that every ``result.json``
records (see :func:`.estimates.estimate_run_seconds`); before the first run of a work root has finished there is none.

``jobs`` runs go at a time (:func:`run_all`, scheduled by :func:`classification.experiments.stages.run_stages`), each
its own process with its own seed: with ``jobs ≥ 2`` every run starts with ``OMP_NUM_THREADS`` = ``MKL_NUM_THREADS`` =
usable cores // jobs (at least 1); with ``jobs = 1`` a run sets its threads as ``tools/train.py`` does
(:func:`classification.foundation.host.configure_threads`). A run's result depends on its seed and its thread count
(CPU float reductions), not on which runs go beside it.
"""
from __future__ import annotations

import glob
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from mmengine.hooks import Hook

from classification.engine import lifecycle
from classification.foundation.atomic import atomic_write_text
from classification.foundation.checkpoints import install_safe_checkpoint_loading
from classification.foundation.errors import UserError
from classification.foundation.host import ROOT, THREAD_VARIABLES, configure_threads, default_num_threads
from classification.engine.launch import prepare_config
from classification.experiments.robustness.evaluate import evaluate_robustness
from classification.experiments.stages import Stage, run_stages

from .estimates import estimate_plan_seconds, hms
CONFIG_DIR = osp.join(ROOT, "configs", "classification")
CONFIG_PREFIX, CONFIG_SUFFIX = "tiny-vit_", "_1xb128-20e_fmnist.py"
BASE_EPOCHS = 20  # the schedule of the tiny-ViT Fashion-MNIST configs
DEFAULT_BUDGET = 0.3  # 6 epochs: the default 24 runs in < 45 min on 2 cores (docs/benchmarks.md)
DEFAULT_SEEDS = (0, 1, 2)
# the default run: the paper's methods, then the seed methods TokenMixup (HTM, VTM) and R-Mix
DEFAULT_METHODS = ("none", "baseline", "transmix", "maskmix", "mixpro", "htm", "vtm", "rmix")
DROP_RATIO = 0.5
RESULT_FILE = "result.json"
DESCRIPTIONS = {
    "none": "no mixing (label-smoothed cross-entropy)",
    "baseline": "Mixup 0.8 / CutMix 1.0 (switch 0.5), area labels",
    "transmix": "baseline mixing; CutMix λ = (λ_area + λ_attn)/2",
    "maskmix": "MaskMix 50% / Mixup 25% / CutMix 25%, area labels (PAL off)",
    "mixpro": "MaskMix 50% / Mixup 25% / CutMix 25% + Progressive Attention Labeling",
    "htm": "TokenMixup HTM (saliency-guided token mixing of easy samples at block 2) + baseline Mixup/CutMix",
    "vtm": "TokenMixup VTM (lower blocks' salient tokens join keys/values at block 2) + baseline Mixup/CutMix",
    "rmix": "R-Mix: input-gradient saliency mixing on every batch",
    "rlmix": "RL-Mix: R-Mix with each image's saliency quantile chosen by a PPO policy",
    "resizemix": "ResizeMix 50% (whole partner image resized into a random box) / Mixup 50%, area labels",
}


@dataclass(frozen=True)
class ExperimentSet:
    """A named set of runs for ``tools/reproduce.py --set NAME``: ``runs`` maps each run label to its config (a file
    name in ``configs/classification``); every run is also tested under 50% drop on the ``occlusion_patches`` grids
    (px; () → only the token-sized one); ``reference`` is the label the others are compared with, seed by seed
    (paired differences); ``curves`` the labels whose label-policy statistics (``curve.json``) are drawn; ``budget``
    the set's default budget (``--budget`` replaces it); ``shuffle_grids``: every run is also tested with its images
    cut into g×g cells in random order, for each g; ``step_time``: the report shows each run's median training step
    time."""

    name: str
    title: str
    runs: Tuple[Tuple[str, str], ...]
    descriptions: Tuple[Tuple[str, str], ...] = ()
    occlusion_patches: Tuple[int, ...] = ()
    reference: Optional[str] = None
    curves: Tuple[str, ...] = ()
    budget: float = 0.5
    shuffle_grids: Tuple[int, ...] = ()
    step_time: bool = False

    def configs(self, config_dir: str = CONFIG_DIR) -> dict:
        return {label: osp.join(config_dir, name) for label, name in self.runs}

    def describe(self, label: str) -> str:
        return dict(self.descriptions).get(label) or describe(label)


def _fmnist(prefix: str, method: str) -> str:
    return f"{prefix}{method}{CONFIG_SUFFIX}"


# docs/methods.md, "PAL": each ingredient of MixPro's label space switched alone, and the 64-token model
EXPERIMENT_SETS = {
    "pal-ablation": ExperimentSet(
        name="pal-ablation",
        title="PAL ablation: {PAL λ, area λ} × {hard-label CE, smoothed CE} on the MaskMix batches, + α detached "
              "(16 tokens)",
        runs=tuple((m, _fmnist(CONFIG_PREFIX, m)) for m in
                   ("mixpro", "mixpro-smooth", "mixpro-arealam", "maskmix", "mixpro-detach", "transmix")),
        descriptions=(("mixpro", "PAL λ, hard-label CE (MixPro)"),
                      ("mixpro-smooth", "PAL λ, smoothed soft-target CE"),
                      ("mixpro-arealam", "area λ, hard-label CE"),
                      ("maskmix", "area λ, smoothed soft-target CE (MaskMix)"),
                      ("mixpro-detach", "PAL λ, hard-label CE, α detached"),
                      ("transmix", "for comparison: Mixup/CutMix, CutMix λ = (λ_area + λ_attn)/2")),
        occlusion_patches=(4, 8, 16), reference="mixpro",
        curves=("mixpro", "mixpro-smooth", "mixpro-arealam", "mixpro-detach", "transmix")),
    "tokens64": ExperimentSet(
        name="tokens64",
        title="64 tokens: the tiny ViT with patch 4 (8×8 tokens), MaskMix cells of 8 px (2×2 tokens) or 4 px",
        runs=tuple((m, _fmnist("tiny-vit-p4_", m)) for m in ("baseline", "transmix", "maskmix", "mixpro"))
        + tuple((f"{m}-c4", _fmnist("tiny-vit-p4c4_", m)) for m in ("maskmix", "mixpro")),
        descriptions=(("maskmix-c4", "MaskMix with 4-px cells (one token each), area labels"),
                      ("mixpro-c4", "MaskMix with 4-px cells (one token each) + PAL")),
        occlusion_patches=(4, 8, 16), reference="mixpro", curves=("transmix", "mixpro", "mixpro-c4")),
    # docs/methods.md, "TL-Align" … "MergeMix": the ViT mixing methods against the baseline, MixPro and TransMix
    "vit-methods": ExperimentSet(
        name="vit-methods",
        title="ViT mixing methods: TL-Align, SMMix, TokenMix (teacher-free), MergeMix against the baseline, MixPro "
              "and TransMix (16 tokens)",
        runs=tuple((m, _fmnist(CONFIG_PREFIX, m)) for m in
                   ("baseline", "mixpro", "transmix", "tlalign", "smmix", "tokenmix-area", "mergemix")),
        descriptions=(("tlalign", "TL-Align: token-grid CutMix, per-token labels propagated through the attention"),
                      ("smmix", "SMMix 50% (attention-guided s×s window moved + region and consistency losses) / "
                                "Mixup 50%"),
                      ("tokenmix-area", "TokenMix block masks 50% / Mixup 50%, BCE, area weights (no teacher maps)"),
                      ("mergemix", "MergeMix: top-λN patches by ToMe attention + an extra Mixup CE (2 forwards)")),
        reference="baseline", budget=0.3, shuffle_grids=(4,), step_time=True),
}


class RunFailed(RuntimeError):
    def __init__(self, method: str, seed: int, log: str, detail: str):
        self.method, self.seed, self.log = method, seed, log
        super().__init__(f"run failed: method {method}, seed {seed} ({detail}); log: {log}")


# --------------------------------------------------------------------------------------------------- methods
def config_path(method: str, config_dir: str = CONFIG_DIR) -> str:
    return osp.join(config_dir, f"{CONFIG_PREFIX}{method}{CONFIG_SUFFIX}")


def discover_methods(config_dir: str = CONFIG_DIR) -> List[str]:
    """Every method with a tiny-ViT Fashion-MNIST config (``--methods all``): the default methods in their order,
    then the others in name order."""
    found = sorted(osp.basename(p)[len(CONFIG_PREFIX):-len(CONFIG_SUFFIX)]
                   for p in glob.glob(osp.join(config_dir, f"{CONFIG_PREFIX}*{CONFIG_SUFFIX}")))
    return [m for m in DEFAULT_METHODS if m in found] + [m for m in found if m not in DEFAULT_METHODS]


def default_methods(config_dir: str = CONFIG_DIR) -> List[str]:
    """The methods of the default run (:data:`DEFAULT_METHODS`) that have a config."""
    return [m for m in discover_methods(config_dir) if m in DEFAULT_METHODS]


def resolve_methods(spec: Optional[str], config_dir: str = CONFIG_DIR) -> List[str]:
    """None → the default methods; 'all' → every config; otherwise the comma-separated names, each with a config."""
    if not spec or spec.strip() == "all":
        methods = default_methods(config_dir) if not spec else discover_methods(config_dir)
        if not methods:
            raise UserError(f"no {CONFIG_PREFIX}*{CONFIG_SUFFIX} config in {config_dir}")
        return methods
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    missing = [m for m in methods if not osp.isfile(config_path(m, config_dir))]
    if missing:
        raise UserError(f"no config for method(s) {missing}: expected "
                        f"{config_path(missing[0], config_dir)}; available: {discover_methods(config_dir)}")
    if len(set(methods)) != len(methods):
        raise UserError(f"--methods names a method twice: {spec}")
    return methods


def resolve_set_labels(exp_set: "ExperimentSet", spec: Optional[str]) -> List[str]:
    """None or 'all' → every label of the set; otherwise the comma-separated labels, each in the set."""
    labels = [label for label, _ in exp_set.runs]
    if not spec or spec.strip() == "all":
        return labels
    chosen = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in labels]
    if unknown or len(set(chosen)) != len(chosen):
        raise UserError(f"--methods {spec!r} for --set {exp_set.name}: choose distinct labels from {labels}")
    return chosen


def _first_comment(path: str, limit: int = 100) -> str:
    """The first sentence of the file's first comment block (at most ``limit`` characters)."""
    block = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    block.append(line.lstrip("#").strip())
                elif block:
                    break
    except OSError:
        return ""
    text = " ".join(b for b in block if b)
    if text.startswith("Each method base"):  # none.py's preamble about method bases
        text = text.split(". ", 1)[-1]
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].strip()
    return sentence if len(sentence) <= limit else sentence[:limit - 1].rstrip() + "…"


def describe(method: str, config_dir: str = CONFIG_DIR) -> str:
    """One line on what the method does: ours for the default methods, else the first comment line of its method
    base ``_base_/methods/METHOD.py`` or of its config."""
    if method in DESCRIPTIONS:
        return DESCRIPTIONS[method]
    return (_first_comment(osp.join(config_dir, "_base_", "methods", f"{method}.py"))
            or _first_comment(config_path(method, config_dir)))


def parse_seeds(spec: str) -> List[int]:
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds takes comma-separated integers, got {spec!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds needs distinct integers, got {spec!r}")
    return seeds


# --------------------------------------------------------------------------------------------------- budget
def epochs_for_budget(budget: float, base_epochs: int = BASE_EPOCHS) -> int:
    """max(1, round(base_epochs · budget)), rounding halves up."""
    if not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget}")
    return max(1, int(math.floor(base_epochs * budget + 0.5)))


# --------------------------------------------------------------------------------------------------- results
def run_dir(work_root: str, method: str, seed: int) -> str:
    return osp.join(work_root, method, f"seed{seed}")


def write_result(work_dir: str, result: dict) -> None:
    atomic_write_text(osp.join(work_dir, RESULT_FILE), json.dumps(result, indent=2))


def load_result(work_dir: str, epochs: Optional[int] = None,
                occlusion_patches: Sequence[int] = (), shuffle_grids: Sequence[int] = ()) -> Optional[dict]:
    """The run's result.json, or None when it is missing, unreadable, incomplete, (``epochs`` given) for other
    epochs, or without the top-1 under 50% drop on one of ``occlusion_patches`` or under a shuffle of one of
    ``shuffle_grids``."""
    try:
        with open(osp.join(work_dir, RESULT_FILE)) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    if not all(isinstance(result.get(k), (int, float)) for k in ("top1", "top1_drop50", "epochs")):
        return None
    if epochs is not None and result["epochs"] != epochs:
        return None
    if any(str(p) not in (result.get("top1_drop50_by_patch") or {}) for p in occlusion_patches):
        return None
    if any(shuffle_key(g) not in (result.get("top1_shuffle") or {}) for g in shuffle_grids):
        return None
    return result


def shuffle_key(grid: int) -> str:
    """The key of a g×g patch shuffle in ``result.json``'s ``top1_shuffle`` (the robustness suite's key)."""
    return f"{grid}x{grid}"


def epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def show_path(path: str) -> str:
    """Repository-relative when inside the repository."""
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


# --------------------------------------------------------------------------------------------------- one run
class StepTimer(Hook):
    """Wall time of every training iteration (before_train_iter → after_train_iter: the forward and backward passes
    and the optimiser step, not the loading); :attr:`median_ms` over all but the first ``skip`` iterations."""

    def __init__(self, skip: int = 10):
        self.skip, self.times, self._t0 = skip, [], 0.0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.times.append(time.perf_counter() - self._t0)

    @property
    def median_ms(self) -> Optional[float]:
        times = sorted(self.times[self.skip:] or self.times)
        return 1000.0 * times[len(times) // 2] if times else None


def train_and_evaluate(method: str, config: str, seed: int, epochs: int, work_dir: str,
                       cfg_options: Optional[dict] = None, occlusion_patches: Sequence[int] = (),
                       shuffle_grids: Sequence[int] = ()) -> dict:
    """One run in this process: ``tools/train.py``'s config handling
    (:func:`classification.engine.launch.prepare_config`), training with ``randomness.seed = model.mix_seed = seed``
    for ``epochs`` (validation once, at the end), the Runner's test, then top-1 under 50% patch drop
    (:func:`classification.experiments.robustness.evaluate.evaluate_robustness`, suite ``occlusion``) with token-sized
    patches (``top1_drop50``) and, when given, on each grid of ``occlusion_patches`` px (``top1_drop50_by_patch``)
    and with each image cut into g×g cells shuffled for each g of ``shuffle_grids`` (``top1_shuffle``, keyed
    :func:`shuffle_key`); ``step_ms``: the median training step (:class:`StepTimer`); writes and returns the result."""
    t0 = time.time()
    install_safe_checkpoint_loading()
    options = {**(cfg_options or {}), "model.mix_seed": seed, "train_cfg.val_interval": epochs}
    cfg = prepare_config(config, work_dir=work_dir, cfg_options=options, epochs=epochs, seed=seed)
    threads = configure_threads(cfg)
    timer = StepTimer()
    finished = lifecycle.run(cfg, test=True, hooks=[timer])
    metrics, train_seconds = finished.metrics, finished.train_seconds
    run_config = osp.join(work_dir, osp.basename(config))  # the config as the Runner dumped it (all overrides)
    checkpoint = osp.join(work_dir, f"epoch_{epochs}.pth")
    run_config = run_config if osp.isfile(run_config) else config

    def drop_top1(patches: Sequence[int] = ()) -> Tuple[float, dict]:
        """(clean top-1, {patch: top-1 under 50% drop}); () → the token-sized patch only, keyed 'token'."""
        robust = evaluate_robustness(run_config, checkpoint, suites=("occlusion",), occlusion_ratios=(DROP_RATIO,),
                                     occlusion_patch_size=list(patches) or None, seed=seed, progress=False,
                                     name=f"{method} seed {seed}")
        by_patch = robust.get("occlusion_by_patch") or {str(patches[0]) if patches else "token":
                                                        robust.get("occlusion") or {}}
        drops = {p: v.get(str(float(DROP_RATIO)), v.get(DROP_RATIO)) for p, v in by_patch.items()}
        if any(v is None for v in drops.values()):
            raise KeyError(f"evaluate_robustness gave no occlusion top-1 at ratio {DROP_RATIO}: {robust}")
        return float(robust["clean_top1"]), {p: float(v) for p, v in drops.items()}

    clean, token = drop_top1()
    drop = token["token"]
    by_patch = drop_top1(occlusion_patches)[1] if occlusion_patches else {}
    result = dict(method=method, seed=seed, epochs=epochs, top1=float(metrics["top1"]), top1_drop50=float(drop),
                  top5=float(metrics.get("top5", float("nan"))), clean_top1_robustness=clean,
                  train_seconds=round(train_seconds, 1), run_seconds=round(time.time() - t0, 1),
                  step_ms=timer.median_ms, threads=threads, config=show_path(config), checkpoint=checkpoint)
    if by_patch:
        result["top1_drop50_by_patch"] = by_patch
    if shuffle_grids:
        shuffled = evaluate_robustness(run_config, checkpoint, suites=("shuffle",), shuffle_grids=list(shuffle_grids),
                                       seed=seed, progress=False, name=f"{method} seed {seed}")["shuffle"]
        result["top1_shuffle"] = {shuffle_key(g): float(shuffled[shuffle_key(g)]) for g in shuffle_grids}
    write_result(work_dir, result)
    return result


def launch_run(method: str, config: str, seed: int, epochs: int, work_dir: str,
               cfg_options: Sequence[str] = (), threads: Optional[int] = None,
               occlusion_patches: Sequence[int] = (), shuffle_grids: Sequence[int] = ()) -> dict:
    """One run in a fresh process (``python -m classification.experiments.reproduction.cli run-one``), its output in
    ``WORK_DIR/reproduce.log``; ``threads`` given: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` of that process.
    Adds the process's start and end (``started``, ``finished``: Unix seconds) to its ``result.json``. Raises
    :class:`RunFailed` naming the method, seed and log."""
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, "reproduce.log")
    cmd = [sys.executable, "-m", "classification.experiments.reproduction.cli", "run-one", config, "--method", method,
           "--seed", str(seed), "--epochs", str(epochs), "--work-dir", work_dir]
    if occlusion_patches:
        cmd += ["--occlusion-patches", *map(str, occlusion_patches)]
    if shuffle_grids:
        cmd += ["--shuffle-grids", *map(str, shuffle_grids)]
    if cfg_options:
        cmd += ["--cfg-options", *cfg_options]
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        started = time.time()
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RunFailed(method, seed, log, f"exit code {code}")
    result = load_result(work_dir, epochs, occlusion_patches, shuffle_grids)
    if result is None:
        raise RunFailed(method, seed, log, f"finished without a complete {RESULT_FILE}")
    result.update(started=round(started, 2), finished=round(time.time(), 2))
    write_result(work_dir, result)
    return result


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------------- the loop
@dataclass
class Outcome:
    """What :func:`run_all` did: every result (reused and new), the failed runs, and the counts."""

    results: List[dict] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    reused: int = 0
    trained: int = 0


def run_all(methods: Sequence[str], seeds: Sequence[int], epochs: int, work_root: str,
            config_dir: str = CONFIG_DIR, cfg_options: Sequence[str] = (), force: bool = False,
            keep_going: bool = False, report_only: bool = False, jobs: int = 1,
            configs: Optional[dict] = None, occlusion_patches: Sequence[int] = (),
            shuffle_grids: Sequence[int] = ()) -> Outcome:
    """Train and evaluate every (method, seed) pair without a ``result.json`` for ``epochs`` (all with ``force``;
    none with ``report_only``), one process each, ``jobs`` at a time in plan order (threads: module docstring;
    scheduled by :func:`classification.experiments.stages.run_stages`, each run a thread stage waiting on its child),
    printing a line when a run starts and ends with the elapsed time and the measured estimate of the wall time
    left. A failure stops the launching of new runs, lets the running ones finish and then ends with
    :class:`SystemExit` naming the run and its log, unless ``keep_going``: then it is recorded in
    :attr:`Outcome.failed` and the other runs go on. ``configs`` (label → config path) replaces the
    ``tiny-vit_{METHOD}`` configs of ``config_dir`` (an :class:`ExperimentSet`); ``occlusion_patches``: the extra
    occlusion grids every run is tested on, ``shuffle_grids`` its patch-shuffle grids (a result without them is
    rerun)."""
    if int(jobs) < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs}")
    out, todo, measured = _reuse_results(methods, seeds, epochs, work_root, force, occlusion_patches, shuffle_grids)
    if report_only and todo:
        print("report only, no result for: " + ", ".join(f"{m} seed {s}" for m, s in todo))
        todo = []
    threads = default_num_threads(local_processes=jobs) if jobs > 1 else None
    at_a_time = f", {jobs} at a time ({threads} thread{'s' if threads > 1 else ''} each)" if threads else ""
    print(f"reproduce: {len(methods)} methods ({', '.join(methods)}) × {len(seeds)} seeds, {epochs_text(epochs)}: "
          f"{len(methods) * len(seeds)} runs, {out.reused} done already, {len(todo)} to train{at_a_time}; estimate "
          f"{hms(estimate_plan_seconds(measured, todo, epochs, jobs))} (from the runs timed so far)", flush=True)
    stages = [Stage(f"{method} seed {seed}", launch_run, dict(
        method=method, config=configs[method] if configs else config_path(method, config_dir), seed=seed,
        epochs=epochs, work_dir=run_dir(work_root, method, seed), cfg_options=cfg_options, threads=threads,
        occlusion_patches=occlusion_patches, shuffle_grids=shuffle_grids), thread=True) for method, seed in todo]
    progress = _Progress(todo, epochs, jobs, measured, out, keep_going)
    try:
        run_stages(stages, jobs, on_event=None, on_start=progress.started, on_end=progress.finished,
                   on_failure=progress.failed)
    except RunFailed as err:
        raise SystemExit(f"stopped after the failure of {err.method} seed {err.seed} (log: {err.log}); finished "
                         f"runs keep their result.json: rerun the same command to continue, or add --keep-going")
    return out


def _reuse_results(methods: Sequence[str], seeds: Sequence[int], epochs: int, work_root: str, force: bool,
                   occlusion_patches: Sequence[int], shuffle_grids: Sequence[int]) -> Tuple[Outcome, list, list]:
    """(the outcome holding the complete results, unless ``force``; the (method, seed) pairs to run; every timed
    result.json of the plan's run dirs, any epochs)."""
    out, todo, measured = Outcome(), [], []
    for method, seed in [(m, s) for m in methods for s in seeds]:
        existing = load_result(run_dir(work_root, method, seed))
        if existing is not None:
            measured.append(existing)
        complete = load_result(run_dir(work_root, method, seed), epochs, occlusion_patches, shuffle_grids) is not None
        if complete and not force:
            out.results.append(existing)
        else:
            todo.append((method, seed))
    out.reused = len(out.results)
    return out, todo, measured


class _Progress:
    """:func:`run_all`'s lines as its runs start, finish and fail (elapsed time, ETA), and its :class:`Outcome`."""

    def __init__(self, todo: list, epochs: int, jobs: int, measured: list, out: Outcome, keep_going: bool):
        self.waiting, self.epochs, self.jobs, self.measured, self.out = list(todo), epochs, jobs, measured, out
        self.number = {f"{m} seed {s}": i for i, (m, s) in enumerate(todo, 1)}
        self.keep_going, self.stopped, self.t_start, self.running = keep_going, False, time.time(), {}

    def eta(self) -> str:
        """What is still to run: the running runs, and the waiting ones unless stopping."""
        now = time.time()
        return hms(estimate_plan_seconds(self.measured, [] if self.stopped else self.waiting, self.epochs, self.jobs,
                                         [(m, now - t0) for m, t0 in self.running.values()]))

    def head(self, stage) -> str:
        return f"[{self.number[stage.name]}/{len(self.number)}]"

    def started(self, stage) -> None:
        method, seed, work_dir = stage.kwargs["method"], stage.kwargs["seed"], stage.kwargs["work_dir"]
        self.waiting.remove((method, seed))
        print(f"{self.head(stage)} start {method} seed {seed} ({epochs_text(self.epochs)}) in {show_path(work_dir)} — "
              f"elapsed {hms(time.time() - self.t_start)}, ETA {self.eta()}", flush=True)
        stale = osp.join(work_dir, RESULT_FILE)
        if osp.exists(stale):
            os.remove(stale)
        self.running[stage.name] = (method, time.time())

    def finished(self, stage, run) -> None:
        t0, result = self.running.pop(stage.name)[1], run.result
        self.out.trained += 1
        self.out.results.append(result)
        self.measured.append(result)
        print(f"{self.head(stage)} done  {stage.kwargs['method']} seed {stage.kwargs['seed']}: top-1 "
              f"{result['top1']:.2f}, @50% drop {result['top1_drop50']:.2f} in {hms(time.time() - t0)} — elapsed "
              f"{hms(time.time() - self.t_start)}, ETA {self.eta()}", flush=True)

    def failed(self, stage, err: Exception) -> bool:
        """Report a :class:`RunFailed` (anything else is not a run's failure: raised); True: ``keep_going``."""
        if not isinstance(err, RunFailed):
            return False
        t0 = self.running.pop(stage.name)[1]
        print(f"{self.head(stage)} FAILED {err.method} seed {err.seed} after {hms(time.time() - t0)}: {err}\n"
              f"--- last lines of {err.log} ---\n{_tail(err.log)}---", file=sys.stderr, flush=True)
        self.out.failed.append(f"{err.method} seed {err.seed} (log `{show_path(err.log)}`)")
        if not self.keep_going and not self.stopped:
            self.stopped = True
            if self.running:
                print(f"no new runs after this failure; waiting for the {len(self.running)} running "
                      f"run{'s' if len(self.running) > 1 else ''} to finish", file=sys.stderr, flush=True)
        return self.keep_going

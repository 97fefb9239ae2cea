#!/usr/bin/env python
"""Reproduction table: every mixing method on Fashion-MNIST with the tiny ViT, several seeds, one budget.

    python tools/reproduce.py [--methods none,baseline,...] [--seeds 0,1,2] [--budget 0.5]
                              [--out docs/results.md] [--plot docs/results.png] [--work-root work_dirs/reproduce]
                              [--force] [--keep-going] [--report-only] [--cfg-options key=value ...]

Methods are the configs ``configs/classification/tiny-vit_{METHOD}_1xb128-20e_fmnist.py``: by default none,
baseline (Mixup + CutMix), transmix, maskmix (MaskMix alone, PAL off), mixpro (MaskMix + PAL) and the seed methods
htm, vtm, rmix (TokenMixup, R-Mix); ``--methods all`` adds every other such config in name order (rlmix, and new
methods join automatically). Every (method, seed) run trains like
``tools/train.py CONFIG`` with ``randomness.seed = model.mix_seed = seed`` and ``max(1, round(20 · budget))`` epochs
(the schedule is shortened with it: warm-up kept, cosine to the new last epoch), in its own process, in
``WORK_ROOT/METHOD/seedSEED``; then the final model is tested on the 10k test set (the Runner's test) and under 50%
patch drop (``classification.robustness.evaluate_robustness``, suite ``occlusion`` at ratio 0.5: half of the 4×4
grid of token-sized patches zeroed in [0,1] pixel space before normalisation, one random set per batch). The run
leaves ``result.json`` in its work dir; a run that has one (for the same epochs) is not trained again, so a killed
reproduction continues where it stopped (``--force`` retrains).

Time: a 20-epoch run takes about 5 min on the 2-core development machine when it has it to itself (~15 s an epoch;
the demo's 5.0 min), and each run adds ~10 s of process start, test and robustness evaluation. The default
budget 0.5 (10 epochs) costs ≈ 2.7 min per run: ≈ 40 min for the 5 paper methods × 3 seeds, ≈ 72 min for the
default 8 methods × 3 seeds (an epoch of R-Mix, which spends an extra forward + backward per step, takes 1.6× as
long, HTM and VTM 1.15×, RL-Mix with its second saliency pass ≈ 2.2×: ``--methods all`` ≈ 90 min); a shared
machine takes longer.

The report (``--out``, default docs/results.md) has mean ± std (ddof=1) test top-1 and top-1 under 50% patch drop
per method, the per-seed values, a sentence on whether the paper's ranking MixPro > TransMix > baseline holds at
this scale, and the wall time, machine, versions, budget, seeds and the exact command; ``--plot`` is a bar chart of
both columns with the std as error bars.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, "configs", "classification")
CONFIG_PREFIX, CONFIG_SUFFIX = "tiny-vit_", "_1xb128-20e_fmnist.py"
BASE_EPOCHS = 20  # the schedule of the tiny-ViT Fashion-MNIST configs
DEFAULT_BUDGET = 0.5
DEFAULT_SEEDS = (0, 1, 2)
# the default run: the paper's methods, then the seed methods the benchmark issue names (≤ 90 min at budget 0.5)
DEFAULT_METHODS = ("none", "baseline", "transmix", "maskmix", "mixpro", "htm", "vtm", "rmix")
# time model of one run on the 2-core development machine used alone (the demo: 20 epochs in 5.0 min)
SECONDS_PER_EPOCH, SECONDS_PER_RUN = 15.0, 10.0
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
}
# training time per epoch relative to MixPro's, measured on the 2-core machine (R-Mix spends one extra forward +
# backward per step); methods not listed count as 1
STEP_COST = {"rmix": 1.6, "rlmix": 2.2, "htm": 1.15, "vtm": 1.15}
PAPER_RANKING = ("mixpro", "transmix", "baseline")
DISPLAY = {"none": "none", "baseline": "baseline", "transmix": "TransMix", "maskmix": "MaskMix",
           "mixpro": "MixPro", "htm": "HTM", "vtm": "VTM", "rmix": "R-Mix", "rlmix": "RL-Mix"}


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
            raise SystemExit(f"no {CONFIG_PREFIX}*{CONFIG_SUFFIX} config in {config_dir}")
        return methods
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    missing = [m for m in methods if not osp.isfile(config_path(m, config_dir))]
    if missing:
        raise SystemExit(f"no config for method(s) {missing}: expected "
                         f"{config_path(missing[0], config_dir)}; available: {discover_methods(config_dir)}")
    if len(set(methods)) != len(methods):
        raise SystemExit(f"--methods names a method twice: {spec}")
    return methods


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
    """One line on what the method does: ours for the default methods, else the first comment line of its config
    or of its method base ``_base_/methods/METHOD.py``."""
    if method in DESCRIPTIONS:
        return DESCRIPTIONS[method]
    return (_first_comment(osp.join(config_dir, "_base_", "methods", f"{method}.py"))
            or _first_comment(config_path(method, config_dir)))


def parse_seeds(spec: str) -> List[int]:
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds takes comma-separated integers, got {spec!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds needs distinct integers, got {spec!r}")
    return seeds


# --------------------------------------------------------------------------------------------------- budget
def epochs_for_budget(budget: float, base_epochs: int = BASE_EPOCHS) -> int:
    """max(1, round(base_epochs · budget)), rounding halves up."""
    if not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget}")
    return max(1, int(math.floor(base_epochs * budget + 0.5)))


def estimate_seconds(runs: int, epochs: int, step_cost: float = 1.0) -> float:
    """Time of ``runs`` runs on the 2-core machine used alone (the demo's 15 s an epoch, 10 s a run besides)."""
    return runs * (epochs * SECONDS_PER_EPOCH * step_cost + SECONDS_PER_RUN)


def estimate_plan_seconds(plan: Sequence[tuple], epochs: int) -> float:
    """Estimate for (method, seed) runs, with each method's :data:`STEP_COST`."""
    return sum(estimate_seconds(1, epochs, STEP_COST.get(method, 1.0)) for method, _ in plan)


def shorten_schedule(cfg, epochs: int) -> None:
    """Train for ``epochs``: epoch-based schedulers that end at the config's last epoch end at the new one (cosine
    ``T_max`` follows), ones that would start at or after it are dropped (the warm-up keeps its length); validation
    once, at the end."""
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
            if "T_max" in sched:
                sched["T_max"] = end - begin
        kept.append(sched)
    cfg.param_scheduler = kept
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs


# --------------------------------------------------------------------------------------------------- results
def run_dir(work_root: str, method: str, seed: int) -> str:
    return osp.join(work_root, method, f"seed{seed}")


def write_result(work_dir: str, result: dict) -> None:
    from classification.engine import atomic_write

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
    atomic_write(osp.join(work_dir, RESULT_FILE), write)


def load_result(work_dir: str, epochs: Optional[int] = None) -> Optional[dict]:
    """The run's result.json, or None when it is missing, unreadable, incomplete or for other epochs."""
    path = osp.join(work_dir, RESULT_FILE)
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    if not all(isinstance(result.get(k), (int, float)) for k in ("top1", "top1_drop50", "epochs")):
        return None
    if epochs is not None and result["epochs"] != epochs:
        return None
    return result


# --------------------------------------------------------------------------------------------------- one run
def _load_train_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location("_mixpro_train_tool", osp.join(ROOT, "tools", "train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_and_evaluate(method: str, config: str, seed: int, epochs: int, work_dir: str,
                       cfg_options: Optional[dict] = None) -> dict:
    """One run in this process: tools/train.py's config handling, training, the Runner's test, then top-1 under 50%
    patch drop; writes and returns the result."""
    t0 = time.time()
    from mmengine.runner import Runner

    from classification.engine import release_dataloader_workers
    from classification.robustness import evaluate_robustness
    train_tool = _load_train_tool()
    args = argparse.Namespace(config=config, work_dir=work_dir, cfg_options=cfg_options, launcher="none", amp=None,
                              resume=None)
    cfg = train_tool.build_config(args)
    cfg.randomness = dict(cfg.get("randomness") or {}, seed=seed)
    cfg.model.mix_seed = seed
    shorten_schedule(cfg, epochs)
    runner = Runner.from_cfg(cfg)
    t_train = time.time()
    runner.train()
    train_seconds = time.time() - t_train
    metrics = runner.test()
    release_dataloader_workers(runner)
    del runner
    run_config = osp.join(work_dir, osp.basename(config))  # the config as the Runner dumped it (all overrides)
    checkpoint = osp.join(work_dir, f"epoch_{epochs}.pth")
    robust = evaluate_robustness(run_config if osp.isfile(run_config) else config, checkpoint,
                                 suites=("occlusion",), occlusion_ratios=(DROP_RATIO,), seed=seed, progress=False,
                                 name=f"{method} seed {seed}")
    occlusion = robust.get("occlusion") or {}
    drop = occlusion.get(str(float(DROP_RATIO)), occlusion.get(DROP_RATIO))
    if drop is None:
        raise KeyError(f"evaluate_robustness gave no occlusion top-1 at ratio {DROP_RATIO}: {robust}")
    result = dict(method=method, seed=seed, epochs=epochs, top1=float(metrics["top1"]), top1_drop50=float(drop),
                  top5=float(metrics.get("top5", float("nan"))), clean_top1_robustness=float(robust["clean_top1"]),
                  train_seconds=round(train_seconds, 1), run_seconds=round(time.time() - t0, 1),
                  config=osp.relpath(config, ROOT), checkpoint=checkpoint)
    write_result(work_dir, result)
    return result


def launch_run(method: str, config: str, seed: int, epochs: int, work_dir: str,
               cfg_options: Sequence[str] = ()) -> dict:
    """One run in a fresh process (``tools/reproduce.py run-one``), its output in ``WORK_DIR/reproduce.log``.
    Raises :class:`RunFailed` naming the method, seed and log."""
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, "reproduce.log")
    cmd = [sys.executable, osp.abspath(__file__), "run-one", config, "--method", method, "--seed", str(seed),
           "--epochs", str(epochs), "--work-dir", work_dir]
    if cfg_options:
        cmd += ["--cfg-options", *cfg_options]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RunFailed(method, seed, log, f"exit code {code}")
    result = load_result(work_dir, epochs)
    if result is None:
        raise RunFailed(method, seed, log, f"finished without a complete {RESULT_FILE}")
    return result


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------------- aggregation
def mean_std(values: Sequence[float]):
    """(mean, sample std with ddof=1); the std is None for a single value."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_std(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    if mean is None:
        return "—"
    return f"{mean:.2f} (n=1)" if std is None else f"{mean:.2f} ± {std:.2f}"


def aggregate(results: Sequence[dict], methods: Sequence[str]) -> Dict[str, dict]:
    """method → {seeds, top1 [...], drop [...], top1_mean/std, drop_mean/std, n}, seeds in ascending order."""
    stats = {}
    for method in methods:
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["seed"])
        top1 = [float(r["top1"]) for r in rows]
        drop = [float(r["top1_drop50"]) for r in rows]
        (m1, s1), (m2, s2) = mean_std(top1), mean_std(drop)
        stats[method] = dict(seeds=[r["seed"] for r in rows], top1=top1, drop=drop, top1_mean=m1, top1_std=s1,
                             drop_mean=m2, drop_std=s2, n=len(rows))
    return stats


def _name(method: str) -> str:
    return DISPLAY.get(method, method)


def _value(s: dict, key: str) -> str:
    mean, std = s[f"{key}_mean"], s[f"{key}_std"]
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def ranking_sentence(stats: Dict[str, dict], key: str = "top1") -> str:
    """Whether mean MixPro > TransMix > baseline (paper's Table 1 order) holds, with the numbers, and whether the
    gaps exceed the seed-to-seed spread."""
    missing = [m for m in PAPER_RANKING if not stats.get(m, {}).get("n")]
    if missing:
        return (f"The paper's ranking MixPro > TransMix > baseline cannot be checked here: no results for "
                f"{', '.join(_name(m) for m in missing)}.")
    means = {m: stats[m][f"{key}_mean"] for m in PAPER_RANKING}
    holds = means["mixpro"] > means["transmix"] > means["baseline"]
    what = "test top-1" if key == "top1" else "top-1 under 50% patch drop"
    n = sorted({stats[m]["n"] for m in PAPER_RANKING})
    seeds = f"{n[0]} seed{'s' if n[0] != 1 else ''}" if len(n) == 1 else f"{n[0]}–{n[-1]} seeds"
    observed = " > ".join(f"{_name(m)} {_value(stats[m], key)}"
                          for m in sorted(PAPER_RANKING, key=lambda m: -means[m]))
    if holds:
        sentence = (f"The paper's ranking MixPro > TransMix > baseline holds at this scale in mean {what} over "
                    f"{seeds}: {observed}.")
    else:
        sentence = (f"The paper's ranking MixPro > TransMix > baseline does not hold at this scale: mean {what} over "
                    f"{seeds} orders them {observed}.")
    stds = [stats[m][f"{key}_std"] for m in PAPER_RANKING]
    if any(s is None for s in stds):
        return sentence + " With a single seed there is no spread to judge the gaps against."
    unresolved = []
    for a, b in (("mixpro", "transmix"), ("transmix", "baseline")):
        gap = means[a] - means[b]
        spread = max(stats[a][f"{key}_std"], stats[b][f"{key}_std"])
        if abs(gap) <= spread:
            unresolved.append(f"{_name(a)} − {_name(b)} = {gap:+.2f}")
    if unresolved:
        sentence += (f" Gaps within one seed standard deviation ({'; '.join(unresolved)}) are not resolved by "
                     f"this many seeds.")
    else:
        sentence += " Both gaps are larger than the seed-to-seed standard deviation."
    return sentence


# --------------------------------------------------------------------------------------------------- report
def markdown_report(stats: Dict[str, dict], meta: dict, config_dir: str = CONFIG_DIR,
                    plot_rel: Optional[str] = None) -> str:
    lines = ["# Reproduction: mixing methods on Fashion-MNIST (tiny ViT, CPU)", "",
             f"Written by `tools/reproduce.py` ({meta['finished']}); rerun it to update, do not edit by hand.", "",
             f"Every method trains the same tiny ViT (4×4 tokens + CLS, dim 64, depth 4) from scratch on the "
             f"60k Fashion-MNIST training images for **{_epochs(meta['epochs'])}** (budget {meta['budget']:g} of the "
             f"configs' {BASE_EPOCHS}; same AdamW schedule, warm-up then cosine to the last epoch) with seeds "
             f"{', '.join(map(str, meta['seeds']))} (`randomness.seed = model.mix_seed = seed`). "
             f"Top-1 is the final model's on the 10k test set; \"@50% drop\" is its top-1 when half of the 4×4 grid "
             f"of token-sized patches is zeroed in [0,1] pixel space before normalisation (one random set per batch; "
             f"`classification.robustness`, suite `occlusion`). Mean ± sample standard deviation (ddof=1) over "
             f"seeds, in %.", "",
             "| method | description | top-1 | top-1 @50% patch drop | per seed: top-1 / @50% drop | n seeds |",
             "|---|---|---|---|---|---|"]
    for method, s in stats.items():
        per_seed = "; ".join(f"s{seed}: {a:.2f} / {b:.2f}" for seed, a, b in zip(s["seeds"], s["top1"], s["drop"]))
        lines.append(f"| {method} | {describe(method, config_dir)} | {format_mean_std(s['top1'])} | "
                     f"{format_mean_std(s['drop'])} | {per_seed or '—'} | {s['n']} |")
    drop_sentence = ranking_sentence(stats, "drop")
    lines += ["", ranking_sentence(stats, "top1"), "",
              "Under 50% patch drop: " + drop_sentence[:1].lower() + drop_sentence[1:]]
    if meta.get("failed"):
        lines += ["", "**Failed runs** (not in the table): " + "; ".join(meta["failed"])]
    if plot_rel:
        lines += ["", f"![test top-1 and top-1 under 50% patch drop, mean ± std over seeds]({plot_rel})"]
    est = meta["estimate_seconds"]
    lines += ["", "## Run", "",
              f"- command: `{meta['command']}`",
              f"- machine: {meta['platform']}, {meta['cpu']}, {meta['cpu_count']} CPUs; no GPU used"
              if not meta.get("gpu") else f"- machine: {meta['platform']}, {meta['cpu']}, {meta['cpu_count']} CPUs, "
                                          f"GPU {meta['gpu']}",
              f"- stack: python {meta['python']}, torch {meta['torch']}, timm {meta['timm']}, "
              f"mmengine {meta['mmengine']}",
              f"- budget {meta['budget']:g} → {_epochs(meta['epochs'])}; seeds {', '.join(map(str, meta['seeds']))}; "
              f"methods {', '.join(meta['methods'])}",
              f"- wall time of this invocation: {_hms(meta['wall_seconds'])} ({meta['trained']} runs trained, "
              f"{meta['reused']} reused from an earlier invocation); sum of the per-run times (process start, "
              f"training, test, robustness) of all {meta['runs']} runs: {_hms(meta['sum_run_seconds'])}, of which "
              f"training {_hms(meta['sum_train_seconds'])}",
              f"- estimate beforehand (15 s an epoch, ×1.6 for R-Mix, ×1.15 for HTM/VTM, + 10 s a run, the 2-core "
              f"machine used alone): {_hms(est)} for {len(meta['methods']) * len(meta['seeds'])} runs; the "
              f"machine may have been shared with other work",
              f"- per-run logs, checkpoints and result.json: `{_show_path(meta['work_root'])}/METHOD/seedSEED/`"]
    if meta.get("cfg_options"):
        lines.append(f"- config overrides in every run (the data sizes above may not apply): "
                     f"`{' '.join(meta['cfg_options'])}`")
    return "\n".join(lines) + "\n"


def _show_path(path: str) -> str:
    """Repository-relative when inside the repository."""
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def plot_results(stats: Dict[str, dict], path: str, title: str) -> None:
    """Two panels (test top-1, top-1 under 50% patch drop): one bar per method, error bars = std over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    methods = [m for m, s in stats.items() if s["n"]]
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.1 * len(methods) * 2), 3.8))
    for ax, key, label in ((axes[0], "top1", "test top-1 (%)"), (axes[1], "drop", "top-1, 50% patches dropped (%)")):
        means = [stats[m][f"{key}_mean"] for m in methods]
        stds = [stats[m][f"{key}_std"] or 0.0 for m in methods]
        colors = ["tab:red" if m == "mixpro" else "tab:blue" if m == "transmix" else "tab:gray" for m in methods]
        ax.bar(range(len(methods)), means, yerr=stds, capsize=4, color=colors)
        if means:
            low = min(m - s for m, s in zip(means, stds))
            high = max(m + s for m, s in zip(means, stds))
            pad = max(1.0, 0.15 * (high - low))
            ax.set_ylim(max(0.0, low - 2 * pad), min(100.0, high + pad))
        for i, (m, s) in enumerate(zip(means, stds)):
            ax.text(i, m + s, f"{m:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(methods)), [_name(m) for m in methods], rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def environment() -> dict:
    import mmengine
    import timm
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return dict(platform=platform.platform(), cpu=cpu, cpu_count=os.cpu_count(), python=platform.python_version(),
                torch=torch.__version__, timm=timm.__version__, mmengine=mmengine.__version__,
                gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)


# --------------------------------------------------------------------------------------------------- CLI
def parse_args(argv):
    default_epochs = epochs_for_budget(DEFAULT_BUDGET)
    default_plan = [(m, s) for m in default_methods() for s in DEFAULT_SEEDS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", help=f"comma-separated methods, or 'all' for every config (default: "
                                          f"{','.join(default_methods())})")
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="comma-separated (default 0,1,2)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"fraction of the configs' {BASE_EPOCHS} epochs: epochs = max(1, round({BASE_EPOCHS}·F)) "
                             f"(default {DEFAULT_BUDGET} → {default_epochs} epochs, ≈ "
                             f"{estimate_seconds(1, default_epochs) / 60:.1f} min a run on 2 idle cores: the "
                             f"{len(default_plan)} default runs ≈ "
                             f"{estimate_plan_seconds(default_plan, default_epochs) / 60:.0f} min)")
    parser.add_argument("--out", default=osp.join(ROOT, "docs", "results.md"),
                        help="Markdown report (default: docs/results.md of the repository)")
    parser.add_argument("--plot", help="bar plot PNG (default: --out with .png)")
    parser.add_argument("--work-root", default=osp.join(ROOT, "work_dirs", "reproduce"),
                        help="runs go to WORK_ROOT/METHOD/seedSEED (default: work_dirs/reproduce of the repository)")
    parser.add_argument("--config-dir", default=CONFIG_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help="retrain runs that already have a result.json")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failed run, go on with the others (the report lists the failure)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the report from the result.json files already there")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run (e.g. train_dataloader.dataset.limit=1000)")
    args = parser.parse_args(argv)
    args.work_root, args.out = osp.abspath(args.work_root), osp.abspath(args.out)
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    for option in args.cfg_options:
        if "=" not in option:
            parser.error(f"--cfg-options takes KEY=VALUE, got {option!r}")
        if re.match(r"^(randomness\.seed|model\.mix_seed|train_cfg\.max_epochs|work_dir)=", option):
            parser.error(f"--cfg-options {option}: set by reproduce.py itself (--seeds / --budget / --work-root)")
    return args


def run_one_main(argv) -> None:
    """``tools/reproduce.py run-one CONFIG --method M --seed S --epochs E --work-dir DIR [--cfg-options ...]``."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog="reproduce.py run-one", description="train and evaluate one run")
    parser.add_argument("config")
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    args = parser.parse_args(argv)
    result = train_and_evaluate(args.method, args.config, args.seed, args.epochs, args.work_dir, args.cfg_options)
    print("RESULT " + json.dumps(result))


def main(argv=None) -> Optional[Dict[str, dict]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run-one"]:
        run_one_main(argv[1:])
        return None
    t_start = time.time()
    args = parse_args(argv)
    methods = resolve_methods(args.methods, args.config_dir)
    seeds = parse_seeds(args.seeds)
    epochs = epochs_for_budget(args.budget)
    plan = [(m, s) for m in methods for s in seeds]
    results, failed = [], []
    todo = []
    for method, seed in plan:
        existing = load_result(run_dir(args.work_root, method, seed), epochs)
        if existing is not None and not args.force:
            results.append(existing)
        else:
            todo.append((method, seed))
    reused = len(results)
    if args.report_only and todo:
        print("report only, no result for: " + ", ".join(f"{m} seed {s}" for m, s in todo))
        todo = []
    print(f"reproduce: {len(methods)} methods ({', '.join(methods)}) × {len(seeds)} seeds, {_epochs(epochs)} "
          f"(budget {args.budget:g}): {len(plan)} runs, {reused} done already, {len(todo)} to train; estimate "
          f"{_hms(estimate_plan_seconds(todo, epochs))} (2 idle cores)", flush=True)
    durations = []

    def eta(done: int) -> float:
        """The estimate of the runs left, scaled by how the finished runs compared with their estimate."""
        scale = sum(durations) / estimate_plan_seconds(todo[:done], epochs) if durations else 1.0
        return scale * estimate_plan_seconds(todo[done:], epochs)

    for i, (method, seed) in enumerate(todo, 1):
        work_dir = run_dir(args.work_root, method, seed)
        print(f"[{i}/{len(todo)}] start {method} seed {seed} ({_epochs(epochs)}) in {_show_path(work_dir)} — elapsed "
              f"{_hms(time.time() - t_start)}, ETA {_hms(eta(i - 1))}", flush=True)
        stale = osp.join(work_dir, RESULT_FILE)
        if osp.exists(stale):
            os.remove(stale)
        t0 = time.time()
        try:
            result = launch_run(method, config_path(method, args.config_dir), seed, epochs, work_dir,
                                args.cfg_options)
        except RunFailed as err:
            tail = _tail(err.log)
            print(f"[{i}/{len(todo)}] FAILED {method} seed {seed} after {_hms(time.time() - t0)}: {err}\n"
                  f"--- last lines of {err.log} ---\n{tail}---", file=sys.stderr, flush=True)
            failed.append(f"{method} seed {seed} (log `{_show_path(err.log)}`)")
            if not args.keep_going:
                raise SystemExit(f"stopped after the failure of {method} seed {seed} (log: {err.log}); finished runs "
                                 f"keep their result.json: rerun the same command to continue, or add --keep-going")
            continue
        durations.append(time.time() - t0)
        results.append(result)
        print(f"[{i}/{len(todo)}] done  {method} seed {seed}: top-1 {result['top1']:.2f}, @50% drop "
              f"{result['top1_drop50']:.2f} in {_hms(durations[-1])} — elapsed {_hms(time.time() - t_start)}, "
              f"ETA {_hms(eta(i))}", flush=True)

    stats = aggregate(results, methods)
    env = environment()
    meta = dict(env, command=shlex.join(["python", "tools/reproduce.py", *argv]), budget=args.budget, epochs=epochs,
                seeds=seeds, methods=methods, runs=len(results), trained=len(durations), reused=reused,
                wall_seconds=time.time() - t_start,
                sum_run_seconds=sum(float(r.get("run_seconds", r.get("train_seconds", 0))) for r in results),
                sum_train_seconds=sum(float(r.get("train_seconds", 0)) for r in results),
                estimate_seconds=estimate_plan_seconds(plan, epochs), failed=failed, work_root=args.work_root,
                cfg_options=list(args.cfg_options),
                finished=time.strftime("%Y-%m-%d %H:%M"))
    plot = args.plot or osp.splitext(args.out)[0] + ".png"
    plot_results(stats, plot, f"tiny ViT on Fashion-MNIST, {_epochs(epochs)}, mean ± std over "
                              f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
                              f"(y axes do not start at 0)")
    text = markdown_report(stats, meta, args.config_dir,
                           osp.relpath(osp.abspath(plot), osp.dirname(osp.abspath(args.out))))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print("\n" + text)
    print(f"wrote {_show_path(args.out)} and {_show_path(plot)}")
    return stats


if __name__ == "__main__":
    main()

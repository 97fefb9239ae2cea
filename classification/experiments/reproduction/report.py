"""The reproduction's Markdown report (table, ranking sentences, run details) and its bar plot."""
from __future__ import annotations

import os
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from mixpro_core import POLICY_STATS

from classification.foundation.atomic import atomic_write_text

from .estimates import hms
from .paper_tables import METHODS as PAPER_METHODS, PAPER
from .runs import BASE_EPOCHS, CONFIG_DIR, EXPERIMENT_SETS, describe, epochs_text, run_dir, show_path
from .stats import (ALPHA, POWER, display_name, format_interval, format_mean_std, format_p, format_seeds,
                    holm_family, mean_std, paired, ranking_comparisons, ranking_sentence, seeds_needed)


def paper_gaps() -> dict:
    """(a, b) → the median over the paper's Table 1 rows of its top-1 a − b, for MixPro − TransMix and TransMix −
    baseline: the size of difference the default report's power statement asks about."""
    rows = [v for (table, _, _), v in PAPER.items() if table == "1"]
    index = {m: PAPER_METHODS.index(m) for m in PAPER_METHODS}
    return {(a, b): statistics.median(v[index[a]] - v[index[b]] for v in rows)
            for a, b in (("mixpro", "transmix"), ("transmix", "baseline"))}


def ranking_paragraphs(stats: Dict[str, dict]) -> List[str]:
    """The default report's paragraphs on the paper's ranking (top-1, then under 50% patch drop; one Holm family of
    both gaps on both metrics) and how they were tested, separated by empty strings."""
    family = ranking_comparisons(stats)
    gaps, tests = paper_gaps(), sum(c["p"] is not None for c in family.values())
    drop_sentence = ranking_sentence(stats, "drop", family)
    return [ranking_sentence(stats, "top1", family, gaps), "",
            "Under 50% patch drop: " + drop_sentence[:1].lower() + drop_sentence[1:], "",
            f"Seed-level tests: paired by seed, two-sided paired t-test, {100 * (1 - ALPHA):g}% Student-t interval of "
            f"the mean difference, p adjusted by Holm over the report's {tests} ranking tests (up to 2 gaps × 2 "
            f"metrics). The paper's size of a gap is the median over its Table 1 rows (MixPro − TransMix "
            f"{gaps[('mixpro', 'transmix')]:+.1f}, TransMix − baseline {gaps[('transmix', 'baseline')]:+.1f} top-1 "
            f"points); the seeds needed are for a paired t-test at α {ALPHA:g} with power {POWER:g} and the standard "
            f"deviation of the observed per-seed differences."]


def markdown_report(stats: Dict[str, dict], meta: dict, config_dir: str = CONFIG_DIR,
                    plot_rel: Optional[str] = None) -> str:
    """``stats`` from :func:`.stats.aggregate`; ``meta``: the environment (:func:`classification.foundation.host.
    environment`) plus command, budget, epochs, seeds, methods, runs, trained, reused, wall_seconds,
    sum_run_seconds, sum_train_seconds, failed, jobs, threads (the intra-op thread counts the runs' result.json
    record), work_root, cfg_options, finished."""
    lines = ["# Reproduction: mixing methods on Fashion-MNIST (tiny ViT, CPU)", "",
             f"Written by `tools/reproduce.py` ({meta['finished']}); rerun it to update, do not edit by hand.", "",
             f"Every method trains the same tiny ViT (4×4 tokens + CLS, dim 64, depth 4) from scratch on the "
             f"60k Fashion-MNIST training images for **{epochs_text(meta['epochs'])}** (budget {meta['budget']:g} of "
             f"the configs' {BASE_EPOCHS}; same AdamW schedule, warm-up then cosine to the last epoch) with seeds "
             f"{', '.join(map(str, meta['seeds']))} (`randomness.seed = model.mix_seed = seed`). "
             f"Top-1 is the final model's on the 10k test set; \"@50% drop\" is its top-1 when half of the 4×4 grid "
             f"of token-sized patches is zeroed in [0,1] pixel space before normalisation (one random set per batch; "
             f"`classification.experiments.robustness.evaluate`, suite `occlusion`). Mean ± sample standard deviation "
             f"(ddof=1) over seeds, in %.", "",
             "| method | description | top-1 | top-1 @50% patch drop | per seed: top-1 / @50% drop | n seeds |",
             "|---|---|---|---|---|---|"]
    for method, s in stats.items():
        per_seed = "; ".join(f"s{seed}: {a:.2f} / {b:.2f}" for seed, a, b in zip(s["seeds"], s["top1"], s["drop"]))
        lines.append(f"| {method} | {describe(method, config_dir)} | {format_mean_std(s['top1'])} | "
                     f"{format_mean_std(s['drop'])} | {per_seed or '—'} | {s['n']} |")
    lines += [""] + ranking_paragraphs(stats)
    if meta.get("failed"):
        lines += ["", "**Failed runs** (not in the table): " + "; ".join(meta["failed"])]
    if plot_rel:
        lines += ["", f"![test top-1 and top-1 under 50% patch drop, mean ± std over seeds]({plot_rel})"]
    machine = f"- machine: {meta['platform']}, {meta['cpu']}, {meta['cpu_count']} CPUs"
    machine += f", GPU {meta['gpu']}" if meta.get("gpu") else "; no GPU used"
    lines += ["", "## Run", "",
              f"- command: `{meta['command']}`",
              machine,
              f"- stack: python {meta['python']}, torch {meta['torch']}, timm {meta['timm']}, "
              f"mmengine {meta['mmengine']}",
              f"- budget {meta['budget']:g} → {epochs_text(meta['epochs'])}; "
              f"seeds {', '.join(map(str, meta['seeds']))}; "
              f"methods {', '.join(meta['methods'])}",
              f"- wall time of this invocation: {hms(meta['wall_seconds'])} ({meta['trained']} runs trained, "
              f"{meta['reused']} reused from an earlier invocation); sum of the per-run times (process start, "
              f"training, test, robustness) of all {meta['runs']} runs: {hms(meta['sum_run_seconds'])}, of which "
              f"training {hms(meta['sum_train_seconds'])}; the machine may have been shared with other work",
              f"- runs at a time (`--jobs`): {meta['jobs']}, each in its own process; intra-op threads per run: "
              + (", ".join(map(str, meta["threads"])) + " (from the runs' result.json)" if meta["threads"]
                 else "not recorded"),
              f"- per-run logs, checkpoints and result.json: `{show_path(meta['work_root'])}/METHOD/seedSEED/`"]
    if meta.get("cfg_options"):
        lines.append(f"- config overrides in every run (the data sizes above may not apply): "
                     f"`{' '.join(meta['cfg_options'])}`")
    return "\n".join(lines) + "\n"


def _bars(ax, means: Sequence[float], stds: Sequence[float], colors: Sequence[str]) -> None:
    """One bar per mean with its std as error bar; the y axis spans the bars' range (not from 0), within [0, 100]."""
    ax.bar(range(len(means)), means, yerr=stds, capsize=4, color=colors)
    if means:
        low = min(m - s for m, s in zip(means, stds))
        high = max(m + s for m, s in zip(means, stds))
        pad = max(1.0, 0.15 * (high - low))
        ax.set_ylim(max(0.0, low - 2 * pad), min(100.0, high + pad))


def _save_figure(fig, path: str, title: str, fontsize: int, dpi: int) -> None:
    """Title ``fig``, lay it out, write it to ``path`` (its folder made) and close it."""
    import matplotlib.pyplot as plt
    fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


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
        _bars(ax, means, stds, colors)
        for i, (m, s) in enumerate(zip(means, stds)):
            ax.text(i, m + s, f"{m:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(methods)), [display_name(m) for m in methods], rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path, title, fontsize=10, dpi=120)


# --------------------------------------------------------------------------------------------------- experiment sets
SET_MARKER = "<!-- experiment sets: appended by tools/reproduce.py from the files named below -->"
FINDINGS = "results-findings.md"


def _metrics(exp_set) -> List[tuple]:
    """(column header, function result → value) of a set's report: top-1, 50% drop on the token grid and on each
    of the set's grids, top-1 under each of its patch shuffles, and (``step_time``) the median training step."""
    columns = [("top-1", lambda r: r["top1"]), ("@50% drop, token grid", lambda r: r["top1_drop50"])]
    columns += [(f"@50% drop, {p}-px grid", lambda r, p=p: r["top1_drop50_by_patch"][str(p)])
                for p in exp_set.occlusion_patches]
    columns += [(f"shuffled {g}×{g}", lambda r, g=g: r["top1_shuffle"][f"{g}x{g}"]) for g in exp_set.shuffle_grids]
    if exp_set.step_time:
        columns.append(("ms / step", lambda r: r["step_ms"]))
    return columns


def _by_label(results: Sequence[dict], labels: Sequence[str]) -> Dict[str, List[dict]]:
    return {m: sorted((r for r in results if r["method"] == m), key=lambda r: r["seed"]) for m in labels}


def set_report(exp_set, results: Sequence[dict], labels: Sequence[str], meta: dict, plot_rel: Optional[str],
               curves_rel: Optional[str], curve_stats: Dict[str, dict]) -> str:
    """The Markdown report of an :class:`~.runs.ExperimentSet`: mean ± std and per-seed values of every metric,
    paired differences against the set's reference (seeds in common), the label-policy statistics of training
    (``curve_stats`` from :func:`policy_curves`) and the run details."""
    rows = _by_label(results, labels)
    metrics = _metrics(exp_set)
    lines = [f"## {exp_set.title}", "",
             f"Written by `tools/reproduce.py --set {exp_set.name}` ({meta['finished']}); rerun it to update, do not "
             f"edit by hand. Every run trains the tiny ViT on Fashion-MNIST for **{epochs_text(meta['epochs'])}** "
             f"(budget {meta['budget']:g} of {BASE_EPOCHS}) with seeds {', '.join(map(str, meta['seeds']))}; top-1 on "
             f"the 10k test set; \"@50% drop\": top-1 when half of the cells of a square grid are zeroed in pixel "
             f"space (token grid: one cell per token), in %. Mean ± sample std (ddof=1) over seeds.", "",
             "| run | what | " + " | ".join(h for h, _ in metrics) + " | n |",
             "|---|---|" + "---|" * len(metrics) + "---|"]
    for label in labels:
        cells = [format_mean_std([f(r) for r in rows[label]]) for _, f in metrics]
        lines.append(f"| {label} | {exp_set.describe(label)} | " + " | ".join(cells) + f" | {len(rows[label])} |")
    lines += ["", "Per seed (" + " / ".join(h for h, _ in metrics) + "):", "",
              "| run | " + " | ".join(f"seed {s}" for s in meta["seeds"]) + " |",
              "|---|" + "---|" * len(meta["seeds"])]
    for label in labels:
        by_seed = {r["seed"]: r for r in rows[label]}
        cells = [" / ".join(f"{f(by_seed[s]):.2f}" for _, f in metrics) if s in by_seed else "—"
                 for s in meta["seeds"]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += _paired_table(exp_set, rows, labels, metrics)
    if plot_rel:
        lines += ["", f"![{exp_set.name}: mean ± std over seeds]({plot_rel})"]
    if curve_stats:
        shown = [k for k in POLICY_STATS if any(k in s for s in curve_stats.values())]
        lines += ["", "Label-policy statistics logged during training (mean over seeds of the average over the last "
                      "10% of the recorded points; curves below; `lam_gap` over the batches where the policy's λ "
                      "may differ from the area λ; entropy over the patch tokens):", "",
                  "| run | " + " | ".join(POLICY_STATS[k] for k in shown) + " |",
                  "|---|" + "---|" * len(shown)]
        for label, s in curve_stats.items():
            lines.append(f"| {label} | " + " | ".join(f"{s[k]:.3f}" if k in s else "—" for k in shown) + " |")
        if curves_rel:
            lines += ["", f"![{exp_set.name}: label-policy statistics during training, mean over seeds]"
                          f"({curves_rel})"]
    machine = f"{meta['platform']}, {meta['cpu']}, {meta['cpu_count']} CPUs"
    machine += f", GPU {meta['gpu']}" if meta.get("gpu") else ", no GPU used"
    timing = (f"wall time {hms(meta['wall_seconds'])} ({meta['trained']} runs trained, {meta['reused']} reused), "
              f"sum of run times {hms(meta['sum_run_seconds'])}, {meta['jobs']} at a time" if meta['trained'] else
              f"report of {meta['reused']} finished runs (sum of their run times {hms(meta['sum_run_seconds'])})")
    lines += ["", f"Run: `{meta['command']}`; {machine}; python {meta['python']}, torch {meta['torch']}, timm "
                  f"{meta['timm']}, mmengine {meta['mmengine']}; {timing}; runs in "
                  f"`{show_path(meta['work_root'])}/LABEL/seedSEED/`."]
    if meta.get("failed"):
        lines += ["", "**Failed runs** (not in the tables): " + "; ".join(meta["failed"])]
    if meta.get("cfg_options"):
        lines += ["", f"Config overrides in every run: `{' '.join(meta['cfg_options'])}`"]
    return "\n".join(lines) + "\n"


def _paired_table(exp_set, rows: Dict[str, List[dict]], labels: Sequence[str], metrics: List[tuple]) -> list:
    """Every label against the set's reference on every metric, paired by seed (:func:`.stats.paired`), one Holm
    family; [] without reference runs."""
    ref = exp_set.reference
    if not rows.get(ref):
        return []
    family = []
    for label in labels:
        if label == ref or not rows[label]:
            continue
        for header, f in metrics:
            c = paired({r["seed"]: f(r) for r in rows[ref]}, {r["seed"]: f(r) for r in rows[label]})
            if c["n"]:
                family.append((label, header, c))
    holm_family([c for _, _, c in family])
    tests = sum(c["p"] is not None for *_, c in family)
    lines = ["", f"Paired differences against **{ref}** (run − {ref}, paired by seed; mean with its "
                 f"{100 * (1 - ALPHA):g}% Student-t interval; two-sided paired t-test, df = seeds − 1; p adjusted by "
                 f"Holm over the {tests} tests of this table; the last column: seeds a paired t-test "
                 f"(α {ALPHA:g}, power {POWER:g}) would need to resolve a true difference of this mean with this "
                 f"spread):", "",
             "| run − " + ref + " | metric | per-seed differences | mean [95% interval] | std | t (df) | p | "
             "Holm p | seeds for 80% power |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, header, c in family:
        t = "—" if c["t"] is None else f"{c['t']:+.2f} ({c['df']})"
        std = "—" if c["std"] is None else f"{c['std']:.2f}"
        need = format_seeds(seeds_needed(c["mean"], c["std"]), c["mean"], c["std"])
        lines.append(f"| {label} | {header} | {', '.join(f'{x:+.2f}' for x in c['diffs'])} | {format_interval(c)} | "
                     f"{std} | {t} | {format_p(c['p'])} | {format_p(c['p_holm'])} | {need} |")
    return lines


def plot_set_results(exp_set, results: Sequence[dict], labels: Sequence[str], path: str, title: str) -> None:
    """One panel per metric of :func:`_metrics`, one bar per label, error bars = std over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = _by_label(results, labels)
    labels = [m for m in labels if rows[m]]
    metrics = _metrics(exp_set)
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(3.2, 0.75 * len(labels)) * len(metrics), 3.9))
    for ax, (header, f) in zip(axes, metrics):
        values = [[f(r) for r in rows[m]] for m in labels]
        means = [mean_std(v)[0] for v in values]
        stds = [mean_std(v)[1] or 0.0 for v in values]
        _bars(ax, means, stds, ["tab:red" if m == exp_set.reference else "tab:gray" for m in labels])
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(header, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path, title, fontsize=9, dpi=110)


def policy_curves(exp_set, results: Sequence[dict], labels: Sequence[str], work_root: str,
                  path: str) -> Dict[str, dict]:
    """For the set's ``curves`` labels: read each run's ``curve.json`` (:class:`classification.engine.hooks.
    TrainingCurveHook`), draw the label-policy statistics (mean over seeds, one panel per statistic) to ``path``
    and return label → {statistic: mean over seeds of the average over the last 10% of its points}. {} (and no
    file) when no run recorded any."""
    import json

    import numpy as np
    series: Dict[str, Dict[str, List[list]]] = {}
    for r in results:
        if r["method"] not in exp_set.curves or r["method"] not in labels:
            continue
        try:
            with open(osp.join(run_dir(work_root, r["method"], r["seed"]), "curve.json")) as f:
                curve = json.load(f)
        except (OSError, ValueError):
            continue
        for key in POLICY_STATS:
            if curve.get(key):
                series.setdefault(r["method"], {}).setdefault(key, []).append(curve[key])
    if not series:
        return {}
    summary: Dict[str, dict] = {}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k in POLICY_STATS if any(k in s for s in series.values())]
    colors = {label: f"C{i}" for i, label in enumerate(exp_set.curves)}  # one colour per run in every panel
    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, by_key in series.items():
            if key not in by_key:
                continue
            n = min(len(c) for c in by_key[key])  # seeds recorded at the same iterations
            its = np.array([p[0] for p in by_key[key][0][:n]])
            values = np.array([[p[1] for p in c[:n]] for c in by_key[key]])
            ax.plot(its, values.mean(0), label=label, color=colors[label])
            tail = max(1, n // 10)
            summary.setdefault(label, {})[key] = float(values[:, -tail:].mean())
        ax.set_title(POLICY_STATS[key], fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {label: summary[label] for label in labels if label in summary}


def include_set_reports(results_md: str) -> None:
    """Rewrite the end of ``results_md`` (after :data:`SET_MARKER`) with every set report next to it
    (``results-NAME.md`` for the sets of :data:`~.runs.EXPERIMENT_SETS`, in their order) and the hand-written
    findings (``results-findings.md``), each included verbatim; nothing is appended when none exists."""
    folder = osp.dirname(osp.abspath(results_md))
    parts = [osp.join(folder, f"results-{name}.md") for name in EXPERIMENT_SETS] + [osp.join(folder, FINDINGS)]
    with open(results_md) as f:
        text = f.read().split(SET_MARKER)[0].rstrip("\n") + "\n"
    found = [p for p in parts if osp.isfile(p)]
    if found:
        text += "\n" + SET_MARKER + "\n"
        for part in found:
            with open(part) as f:
                text += f"\n<!-- from {osp.basename(part)} -->\n" + f.read().rstrip("\n") + "\n"
    atomic_write_text(results_md, text)

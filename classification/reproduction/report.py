"""The reproduction's Markdown report (table, ranking sentences, run details) and its bar plot."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Optional

from .runs import BASE_EPOCHS, CONFIG_DIR, describe, epochs_text, hms, show_path
from .stats import display_name, format_mean_std, ranking_sentence


def markdown_report(stats: Dict[str, dict], meta: dict, config_dir: str = CONFIG_DIR,
                    plot_rel: Optional[str] = None) -> str:
    """``stats`` from :func:`.stats.aggregate`; ``meta``: the environment (:func:`classification.environment.
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
        ax.set_xticks(range(len(methods)), [display_name(m) for m in methods], rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)

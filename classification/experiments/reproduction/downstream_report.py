"""The downstream set's report (``docs/results-downstream.md``) and figure: per-backbone mean ± std over seeds, the
per-seed values, paired differences against the baseline backbone (paired t-test) and the paper's Tables 2–3."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from .downstream import DATA, HEADS, REFERENCE, by_init, columns
from .paper_tables import PAPER, METHODS
from .estimates import hms
from .runs import epochs_text as runs_text, show_path
from .stats import (ALPHA, POWER, display_name, format_interval, format_mean_std, format_p, format_seeds, holm_family,
                    mean_std, paired, seeds_needed)

PAPER_ROWS = {"linear": ("2", "Linear"), "mask": ("2", "Segmenter mask head"), "mask-rcnn": ("3", "PVT-S")}
HEAD_NAMES = {"linear": "Segmenter linear", "mask": "Segmenter mask", "mask-rcnn": "Mask R-CNN"}


def _name(init: str) -> str:
    return "random init" if init == "random" else display_name(init)


def _paper(head: str, column: str, init: str) -> Optional[float]:
    table, row = PAPER_ROWS[head]
    values = PAPER.get((table, row, column))
    return None if values is None or init not in METHODS else values[METHODS.index(init)]


def _values(rows, head, column, init) -> List[float]:
    found = by_init(rows, head, column).get(init, {})
    return [found[s] for s in sorted(found)]


def _main_table(head_group: Sequence[str], rows, inits, pretrain, with_top1: bool, floor: Optional[float]) -> list:
    cols = [(h, c) for h in head_group for c in columns(h)]
    header = (["backbone"] + (["Fashion-MNIST top-1"] if with_top1 else [])
              + [f"{HEAD_NAMES[h]} {c}" if len(head_group) > 1 else c for h, c in cols] + ["n seeds"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for init in inits:
        top1 = [pretrain.get(init, {})[s] for s in sorted(pretrain.get(init, {}))]
        n = max([len(_values(rows, h, c, init)) for h, c in cols] or [0])
        cells = ([format_mean_std(top1) if init != "random" else "—"] if with_top1 else [])
        cells += [format_mean_std(_values(rows, h, c, init)) for h, c in cols]
        lines.append(f"| {_name(init)} | " + " | ".join(cells) + f" | {n} |")
    if floor is not None:
        lines.append("| floor: all background | " + ("— | " if with_top1 else "")
                     + " | ".join(f"{floor:.2f}" for _ in cols) + " | — |")
    paper = [f"{v:.1f}" if (v := _paper(h, c, "baseline")) is not None else "—" for h, c in cols]
    if any(p != "—" for p in paper):
        for method in METHODS:
            cells = [f"{v:.1f}" if (v := _paper(h, c, method)) is not None else "—" for h, c in cols]
            lines.append(f"| paper: {display_name(method)} | " + ("— | " if with_top1 else "")
                         + " | ".join(cells) + " | — |")
    return lines


def _diff_table(rows, inits, heads) -> list:
    """Every backbone against the baseline backbone on every metric, paired by seed (:func:`.stats.paired`), one
    Holm family, beside the paper's difference and the seeds that would resolve it with the observed spread."""
    family = []
    for head in heads:
        for column in columns(head):
            found = by_init(rows, head, column)
            for init in (i for i in inits if i != REFERENCE):
                c = paired(found.get(REFERENCE, {}), found.get(init, {}))
                if c["n"]:
                    family.append((head, column, init, c))
    holm_family([c for *_, c in family])
    tests = sum(c["p"] is not None for *_, c in family)
    header = ["head", "metric", "backbone − baseline", "per-seed differences", "mean [95% interval]", "p", "Holm p",
              "paper", "seeds for the paper's difference"]
    intro = (f"Paired by seed (the same seed pretrains and fine-tunes): the per-seed differences, their mean with "
             f"its {100 * (1 - ALPHA):g}% Student-t interval, the two-sided paired t-test (df = seeds − 1) and its p "
             f"adjusted by Holm over the {tests} tests of this table. \"Paper\": the paper's difference "
             f"for that column; the last column: the seeds a paired t-test (α {ALPHA:g}, power {POWER:g}) would need "
             f"to resolve a difference of the paper's size with the standard deviation of our per-seed differences "
             f"(the size only: the paper's numbers are on another scale).")
    lines = [intro, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for head, column, init, c in family:
        mine, base = _paper(head, column, init), _paper(head, column, REFERENCE)
        gap = None if mine is None or base is None else mine - base
        need = format_seeds(seeds_needed(gap, c["std"]), gap, c["std"])
        lines.append(f"| {HEAD_NAMES[head]} | {column} | {_name(init)} | {', '.join(f'{x:+.2f}' for x in c['diffs'])} "
                     f"| {format_interval(c)} | {format_p(c['p'])} | {format_p(c['p_holm'])} | "
                     f"{'—' if gap is None else f'{gap:+.1f}'} | {need} |")
    return lines


def _per_seed(rows, head, inits, seeds) -> list:
    cols = columns(head)
    lines = [f"| backbone | seed | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for init in inits:
        for seed in seeds:
            found = [r for r in rows if r["head"] == head and r["init"] == init and r["seed"] == seed]
            if found:
                lines.append(f"| {_name(init)} | {seed} | "
                             + " | ".join("—" if found[0].get(c) is None else f"{found[0][c]:.2f}" for c in cols)
                             + " |")
    return lines


def markdown(collected: dict, inits: Sequence[str], heads: Sequence[str], seeds: Sequence[int], meta: dict,
             plot_rel: Optional[str]) -> str:
    """The report; ``collected`` from :func:`.downstream.collect`; ``meta``: the environment plus command,
    epochs, floor, wall_seconds, sum_run_seconds, jobs, threads, work_root, pretrain_root, finished, quick."""
    rows, pretrain = collected["runs"], collected["pretrain"]
    seg = [h for h in heads if HEADS[h].task == "segmentation"]
    det = [h for h in heads if HEADS[h].task == "detection"]
    data = DATA if not meta.get("quick") else dict(DATA, num_train=8, num_val=4)
    out = ["# Downstream: Fashion-MNIST backbones → Segmenter and Mask R-CNN on the composite set (tiny ViT, CPU)", "",
           f"Written by `tools/reproduce.py --set downstream` ({meta['finished']}); rerun it to update, do not edit by "
           f"hand.", "",
           f"Backbones: the tiny ViT (patch 8, dim 64, depth 4) pretrained on Fashion-MNIST for "
           f"{runs_text(meta['epochs'])} by the reproduction (`{show_path(meta['pretrain_root'])}/METHOD/seedS`) with "
           f"{', '.join(_name(i) for i in inits if i != 'random')} (the baseline: Mixup/CutMix)"
           f"{', or random initialisation' if 'random' in inits else ''}; each converted to mmseg's "
           f"ViT names (position grid resized to 8×8 tokens) and fine-tuned with the same seed S (`randomness.seed`) "
           f"as its pretraining, seeds {', '.join(map(str, seeds))}. Data: the composite set (Fashion-MNIST objects "
           f"on photos) with the photos dimmed to {data['background_brightness']:g} and object tints ≥ "
           f"{data['tint_min']:g}, {data['num_train']} training / {data['num_val']} validation images of "
           f"{data['size']}×{data['size']} (`classification.transfer.downstream_data.composite`, seed {data['seed']}). "
           f"Segmenter: 1500 iterations of 16 images, CE + Dice, AdamW; +MS = scales 0.5–1.75 and flips "
           f"(mmseg's SegTTAModel). Mask R-CNN: a simple feature pyramid on the ViT, 3 epochs of batch 8. "
           f"Mean ± sample std (ddof=1) over seeds; mIoU and AP in %. The paper's rows are its Tables 2–3 (DeiT-S on "
           f"Pascal Context, PVT-S on COCO): compare the differences between backbones, not the values."
           + (" **--quick: 4 iterations / 1 epoch per fine-tune, the numbers mean nothing.**" if meta.get("quick")
              else ""), ""]
    if seg:
        out += ["## Segmentation (the paper's Table 2)", ""]
        out += _main_table(seg, rows, inits, pretrain, True, meta.get("floor"))
        out += [""]
    if det:
        for head in det:
            out += [f"## {HEAD_NAMES[head]} (the paper's Table 3)", ""]
            out += _main_table([head], rows, inits, pretrain, False, None)
            out += [""]
    out += [f"## Paired differences against the {display_name(REFERENCE)} backbone", ""]
    out += _diff_table(rows, inits, heads)
    if plot_rel:
        out += ["", f"![mean ± std over seeds per backbone]({plot_rel})"]
    out += ["", "## Per seed", ""]
    for head in heads:
        out += [f"{HEAD_NAMES[head]}:", ""] + _per_seed(rows, head, inits, seeds) + [""]
    machine = f"- machine: {meta['platform']}, {meta['cpu']}, {meta['cpu_count']} CPUs"
    machine += f", GPU {meta['gpu']}" if meta.get("gpu") else "; no GPU used"
    out += ["## Run", "", f"- command: `{meta['command']}`", machine,
            f"- stack: python {meta['python']}, torch {meta['torch']}, mmengine {meta['mmengine']}",
            f"- from the first run's start to the last run's end (result.json times, including any pause between "
            f"invocations): {hms(collected.get('span'))}; wall time of this invocation: "
            f"{hms(meta['wall_seconds'])} ({meta['ran']} runs); sum of the per-run "
            f"times of the {len(rows)} fine-tunes found: {hms(meta['sum_run_seconds'])}; runs at a time "
            f"(`--jobs`) {meta['jobs']}, threads per run {meta['threads']}; the machine may have been shared",
            f"- per-run logs, checkpoints and result.json: `{show_path(meta['work_root'])}/finetune/HEAD_INIT_seedS/`, "
            f"test metrics: `{show_path(meta['work_root'])}/test/HEAD_INIT_seedS[_ms]/metrics.json`"]
    return "\n".join(out) + "\n"


def plot(collected: dict, inits: Sequence[str], heads: Sequence[str], path: str, floor: Optional[float]) -> None:
    """One panel per head: each metric column's bars per backbone, mean ± std over seeds; the floor on mIoU panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = collected["runs"]
    fig, axes = plt.subplots(1, len(heads), figsize=(4.6 * len(heads), 3.6), squeeze=False)
    colors = {"random": "#999999", "baseline": "#4c72b0", "transmix": "#dd8452", "mixpro": "#55a868"}
    for ax, head in zip(axes[0], heads):
        cols = [c for c in columns(head) if "AP50" not in c and "AP75" not in c]
        width = 0.8 / max(1, len(inits))
        for k, init in enumerate(inits):
            stats = [mean_std(_values(rows, head, c, init)) for c in cols]
            ax.bar([i + k * width for i in range(len(cols))], [m or 0.0 for m, _ in stats], width,
                   yerr=[s or 0.0 for _, s in stats], capsize=3, color=colors.get(init), label=_name(init))
        if floor is not None and HEADS[head].task == "segmentation":
            ax.axhline(floor, color="k", linestyle=":", linewidth=1, label="all background")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cols))])
        ax.set_xticklabels(cols)
        ax.set_title(HEAD_NAMES[head])
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_lines(collected: dict, inits: Sequence[str], heads: Sequence[str]) -> Dict[str, str]:
    """head → one line with each backbone's mean of the head's first column (the progress output's summary)."""
    out = {}
    for head in heads:
        column = columns(head)[0]
        parts = []
        for init in inits:
            mean, _ = mean_std(_values(collected["runs"], head, column, init))
            parts.append(f"{_name(init)} {'—' if mean is None else f'{mean:.2f}'}")
        out[head] = f"{HEAD_NAMES[head]} {column}: " + ", ".join(parts)
    return out

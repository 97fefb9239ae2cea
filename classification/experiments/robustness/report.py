"""The command line behind ``tools/robustness.py``: robustness benchmarks (docs/methods.md, "Robustness benchmarks")
of one or several checkpoints of the same model config, written as JSON, a Markdown table and curves.

Writes into --out-dir (default work_dirs/robustness/<config name>):
  robustness.json   {"config": CONFIG, "models": {NAME: {"checkpoint", "clean_top1", <suite>: ...}}}, top-1 in %,
                    ImageNet-O as AUPR in % (only the suites run are present)
  robustness.md     a Markdown table, one row per checkpoint, one column per suite setting
  occlusion.png, shuffle.png, fgsm.png, pgd.png   top-1 against drop ratio / shuffle grid / ε, one line per checkpoint
NAME defaults to the checkpoint's parent folder. The default suite is occlusion, shuffle, fgsm and pgd on the config's
test set, plus imagenet-a/-r/-o for each of those folders that exists (--imagenet-a etc., default data/imagenet-a ...).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

from classification.foundation.atomic import atomic_write_text
from classification.foundation.checkpoints import install_safe_checkpoint_loading
from classification.foundation.errors import MissingPathError, UserError
from classification.experiments.robustness.evaluate import evaluate_robustness
from classification.experiments.robustness.suites import IMAGENET_SUITES, SUITES, TEST_SET_SUITES

DEFAULT_FOLDERS = {"imagenet-a": "data/imagenet-a", "imagenet-r": "data/imagenet-r", "imagenet-o": "data/imagenet-o"}
CURVE_SUITES = {"occlusion": "patch drop ratio", "shuffle": "shuffle grid", "fgsm": "ε (L∞, pixels)",
                "pgd": "ε (L∞, pixels)"}
MD_HEADERS = {"occlusion": "occ {}", "shuffle": "shuffle {}", "fgsm": "FGSM {}", "pgd": "PGD {}"}
SCALAR_HEADERS = {"imagenet-a": "IN-A top-1", "imagenet-r": "IN-R top-1", "imagenet-o": "IN-O AUPR"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--compare", nargs="+", default=[], metavar="CKPT",
                        help="more checkpoints of the same config to evaluate alongside")
    parser.add_argument("--names", nargs="+", metavar="NAME", help="one name per checkpoint (default: parent folder)")
    parser.add_argument("--suite", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--out-dir", help="default work_dirs/robustness/<config name>")
    parser.add_argument("--batch-size", type=int, help="default: the config's test batch size")
    parser.add_argument("--max-samples", type=int, help="evaluate the first N samples of each dataset")
    parser.add_argument("--attack-max-samples", type=int,
                        help="run FGSM / PGD on the first N test samples only (the other suites on all)")
    parser.add_argument("--num-workers", type=int, help="data loader workers (default: the config's)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    parser.add_argument("--amp", action="store_true",
                        help="bf16 autocast (CUDA only) for the clean / occlusion / shuffle / ImageNet-A/R/O passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--occlusion-patch", "--patch-size", dest="patch_size", type=int, nargs="+", metavar="P",
                        help="occlusion patch size(s) in px (default: 16 px at 224, else the model's token stride); "
                             "several, e.g. 4 8 16, add one column set per size (the first is the 'occ' columns)")
    for suite, folder in DEFAULT_FOLDERS.items():
        parser.add_argument(f"--{suite}", dest=suite.replace("-", "_"), metavar="DIR",
                            help=f"class folders named by WordNet id (default {folder})")
    parser.add_argument("--imagenet-val", metavar="DIR",
                        help="in-distribution set of the ImageNet-O AUPR (default: the config's test set)")
    parser.add_argument("--ema", action="store_true",
                        help="evaluate the checkpoints' EMA weights (timm's 'state_dict_ema', DeiT's 'model_ema')")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def select_suites(arg: Optional[str], folders: Dict[str, Optional[str]]) -> List[str]:
    """--suite parsed and checked; by default the test-set suites plus each ImageNet suite whose folder exists."""
    if arg is None:
        return list(TEST_SET_SUITES) + [s for s in IMAGENET_SUITES if osp.isdir(folders[s] or DEFAULT_FOLDERS[s])]
    suites = [s.strip() for s in arg.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise UserError(f"--suite: unknown suite(s) {unknown}; choose from {','.join(SUITES)}")
    return suites


def checkpoint_names(checkpoints: Sequence[str], names: Optional[Sequence[str]]) -> List[str]:
    """--names, else each checkpoint's parent folder (with the file stem added where two would collide)."""
    if names:
        if len(names) != len(checkpoints):
            raise UserError(f"--names: {len(names)} name(s) for {len(checkpoints)} checkpoint(s)")
        if len(set(names)) != len(names):
            raise UserError(f"--names: duplicate names in {list(names)}")
        return list(names)
    parents = [osp.basename(osp.dirname(osp.abspath(c))) for c in checkpoints]
    result = [p if parents.count(p) == 1 else f"{p}/{osp.splitext(osp.basename(c))[0]}"
              for p, c in zip(parents, checkpoints)]
    if len(set(result)) != len(result):
        raise UserError(f"checkpoints {list(checkpoints)} get the same names {result}: pass --names")
    return result


def _columns(models: dict) -> List[tuple]:
    """(suite, key or None, header) in suite order, keys in first-seen order."""
    columns = [("clean_top1", None, "clean")]
    for suite in SUITES:
        if suite in SCALAR_HEADERS:
            if any(suite in m for m in models.values()):
                columns.append((suite, None, SCALAR_HEADERS[suite]))
            continue
        keys: List[str] = []
        for m in models.values():
            keys += [k for k in m.get(suite, {}) if k not in keys]
        columns += [(suite, k, MD_HEADERS[suite].format(k)) for k in keys]
        if suite == "occlusion":  # the other patch sizes (--occlusion-patch with several sizes)
            extra: List[tuple] = []
            for m in models.values():
                for patch, by_ratio in list(m.get("occlusion_by_patch", {}).items())[1:]:
                    extra += [(patch, k) for k in by_ratio if (patch, k) not in extra]
            columns += [("occlusion_by_patch", pk, f"occ {pk[1]} @{pk[0]}px") for pk in extra]
    return columns


def _cell(model: dict, suite: str, key):
    """The value of a column in one model's entry (None when absent)."""
    if key is None:
        return model.get(suite)
    if isinstance(key, tuple):
        return model.get(suite, {}).get(key[0], {}).get(key[1])
    return model.get(suite, {}).get(key)


def markdown_table(result: dict, notes: Sequence[str] = ()) -> str:
    """One row per checkpoint, one column per suite setting (top-1 %, ImageNet-O AUPR %); ``notes`` go under the
    title."""
    models = result["models"]
    columns = _columns(models)
    lines = [f"Robustness of `{result['config']}` (top-1 %, ImageNet-O: AUPR %)", "", *[f"- {n}" for n in notes],
             *([""] if notes else []),
             "| model | " + " | ".join(h for _, _, h in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, m in models.items():
        cells = []
        for suite, key, _ in columns:
            value = _cell(m, suite, key)
            cells.append("–" if value is None else f"{value:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(result: dict, out_dir: str) -> List[str]:
    """occlusion.png, shuffle.png, fgsm.png, pgd.png (those run): top-1 per setting, one line per checkpoint.
    The attack plots start at ε = 0 with the clean top-1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for suite, xlabel in CURVE_SUITES.items():
        models = {n: m for n, m in result["models"].items() if suite in m}
        if not models:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for name, m in models.items():
            keys = list(m[suite])
            ys = [m[suite][k] for k in keys]
            if suite == "occlusion":
                xs = [float(k) for k in keys]
            elif suite == "shuffle":
                xs = list(range(len(keys)))
            else:
                xs = [0.0] + [float(k.split("/")[0]) for k in keys]
                ys = [m["clean_top1"]] + ys
            ax.plot(xs, ys, marker="o", label=name)
        if suite == "shuffle":
            ax.set_xticks(range(len(keys)), keys)
        elif suite in ("fgsm", "pgd"):
            ax.set_xticks(xs, ["0"] + keys)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"{suite}: {osp.splitext(osp.basename(result['config']))[0]}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f"{suite}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(result: dict, out_dir: str, notes: Sequence[str] = ()) -> List[str]:
    """robustness.json, robustness.md and the plots into ``out_dir``; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, md_path = osp.join(out_dir, "robustness.json"), osp.join(out_dir, "robustness.md")

    atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    atomic_write_text(md_path, markdown_table(result, notes))
    return [json_path, md_path] + plot_curves(result, out_dir)


def main(argv=None) -> dict:
    """``tools/robustness.py``: evaluate every checkpoint, write the outputs, print the table; returns the result."""
    install_safe_checkpoint_loading()
    args = parse_args(argv)
    checkpoints = [args.checkpoint] + list(args.compare)
    for kind, path in [("config", args.config)] + [("checkpoint", c) for c in checkpoints]:
        if not osp.isfile(path):
            raise MissingPathError(f"{kind} not found: {path}")
    folders = {s: getattr(args, s.replace("-", "_")) for s in IMAGENET_SUITES}
    suites = select_suites(args.suite, folders)
    folders = {s: folders[s] or DEFAULT_FOLDERS[s] for s in IMAGENET_SUITES}
    names = checkpoint_names(checkpoints, args.names)
    out_dir = args.out_dir or osp.join("work_dirs", "robustness", osp.splitext(osp.basename(args.config))[0])

    result = {"config": args.config, "models": {}}
    for name, ckpt in zip(names, checkpoints):
        start = time.perf_counter()
        result["models"][name] = evaluate_robustness(
            args.config, ckpt, suites, device=args.device, batch_size=args.batch_size, max_samples=args.max_samples,
            attack_max_samples=args.attack_max_samples,
            num_workers=args.num_workers, amp=args.amp, seed=args.seed, occlusion_patch_size=args.patch_size,
            pgd_steps=args.pgd_steps, imagenet_a=folders["imagenet-a"], imagenet_r=folders["imagenet-r"],
            imagenet_o=folders["imagenet-o"], imagenet_val=args.imagenet_val, progress=not args.quiet, name=name,
            ema=args.ema)
        print(f"{name}: clean top-1 {result['models'][name]['clean_top1']:.2f}% "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    notes = [f"evaluated on the first {args.max_samples} samples of each dataset"] if args.max_samples else []
    if args.attack_max_samples and {"fgsm", "pgd"} & set(suites):
        notes.append(f"FGSM / PGD on the first {args.attack_max_samples} test samples only")
    notes.append(f"seed {args.seed}; PGD {args.pgd_steps} steps, α = ε/4, random start")
    paths = write_outputs(result, out_dir, notes)
    print(markdown_table(result, notes))
    print("wrote " + ", ".join(paths))
    return result

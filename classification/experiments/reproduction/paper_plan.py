"""``tools/paper_tables.py plan``: the jobs behind the paper's tables — per method, pretrain → test the
classifier → convert → fine-tune → test — as a one-node bash script (``tools/dist_train.sh`` / ``dist_test.sh``;
a step whose output exists is skipped, training resumes) and as a slurm script (``sbatch --parsable``, each job
``--dependency=afterok`` on the jobs it needs). Layout under the work root W, as ``collect`` reads it:
``W/pretrain/<stem>/``, ``W/checkpoints/<stem>_<target>.pth``, ``W/finetune/<stem>/``,
``W/test/<stem>/metrics.json`` (the ``_ms`` test configs under their own stem).

``--quick`` keeps the models (DeiT-S, PVT-S, their heads) and shrinks everything else so that the same script runs
on a CPU: a first step writes tiny data sets into W/data (:func:`make_quick_data`), and every job gets
``--cfg-options`` for that data, 64-px inputs, batch 2–4, no loader workers, no validation while training and
one epoch / :data:`QUICK_SEG_ITERS` iterations (:func:`quick_options`, :func:`quick_train_args`).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shlex
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from classification.engine.host import ROOT

from .paper_tables import DEFAULT_ROWS, DOWNSTREAM, METHODS, METRICS_FILE, ROW_GROUPS, TABLE1_BY_MODEL, eval_dir

PY = "$PY"  # first word of a command run by the scripts' interpreter (".venv/bin/python" or $PYTHON)
QUICK_MARKER = "quick-data.json"
QUICK_SIZE = 64  # classification input side, segmentation crop, detection short side (px)
QUICK_SEG_ITERS = 4
QUICK_IMAGENET = dict(classes=2, train_per_class=6, val_per_class=2, min_side=72, max_side=96)
QUICK_COMPOSITE = dict(num_train=8, num_val=4, size=QUICK_SIZE, seed=0)


@dataclass(frozen=True)
class Job:
    """One step: ``kind`` is data | pretrain | test | convert | finetune; ``args`` follow the tool
    (train: CONFIG ARGS...; test: CONFIG CHECKPOINT ARGS...; convert / data: the tool's arguments); the step is
    done when ``output`` exists; ``needs``: names of the jobs that must finish first; ``gpus``: 0 = CPU only."""

    name: str
    kind: str
    args: Tuple[str, ...]
    output: str
    needs: Tuple[str, ...] = ()
    gpus: int = 0


# --------------------------------------------------------------------------------------------------- rows
def resolve_rows(spec: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Row names and groups (table1, table2, table3, a Table 1 model such as deit-s, a downstream row such as
    ade20k-mask) → (Table 1 models, downstream rows), each once, in the tables' order."""
    chosen = set()
    for item in (s.strip() for part in spec for s in part.split(",")):
        if item in ROW_GROUPS:
            chosen.update(ROW_GROUPS[item])
        elif item in TABLE1_BY_MODEL or item in DOWNSTREAM:
            chosen.add(item)
        elif item:
            raise ValueError(f"unknown row {item!r}: choose from {', '.join(ROW_GROUPS)}, "
                             f"{', '.join(TABLE1_BY_MODEL)}, {', '.join(DOWNSTREAM)}")
    if not chosen:
        raise ValueError("no rows chosen")
    return [m for m in TABLE1_BY_MODEL if m in chosen], [k for k in DOWNSTREAM if k in chosen]


def load_config(path: str, what: str):
    """The mmengine config at ``path`` (relative to the repository), without importing its custom modules."""
    from mmengine.config import Config
    full = osp.join(ROOT, path)
    if not osp.isfile(full):
        raise FileNotFoundError(f"{what}: config {path} does not exist")
    return Config.fromfile(full, import_custom_modules=False)


def apply_options(cfg, options: Sequence[str]) -> None:
    """Merge ``KEY=VALUE`` strings into ``cfg`` the way ``tools/train.py --cfg-options`` does."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument("--o", nargs="+", action=DictAction)
    if options:
        cfg.merge_from_dict(parser.parse_args(["--o", *options]).o)


def final_checkpoint(cfg, path: str) -> str:
    """The checkpoint a finished training of ``cfg`` leaves (mmengine's CheckpointHook always saves the last)."""
    loop = cfg.get("train_cfg") or {}
    if "max_iters" in loop:
        return f"iter_{loop['max_iters']}.pth"
    if "max_epochs" in loop:
        return f"epoch_{loop['max_epochs']}.pth"
    raise ValueError(f"{path}: train_cfg has neither max_iters nor max_epochs")


# --------------------------------------------------------------------------------------------------- quick
def _pipeline_options(pipeline, prefix: str) -> List[str]:
    """Shrink the image scales of a top-level pipeline (mmseg/mmdet RandomResize, RandomCrop, Resize)."""
    options, s = [], QUICK_SIZE
    for i, t in enumerate(pipeline or []):
        if t.get("type") == "RandomResize":
            options.append(f"{prefix}.{i}.scale=({4 * s},{s})")
        elif t.get("type") == "RandomCrop":
            options.append(f"{prefix}.{i}.crop_size=({s},{s})")
        elif t.get("type") == "Resize" and "scale" in t:
            options.append(f"{prefix}.{i}.scale=({4 * s},{s})")
    return options


def quick_options(cfg, family: str, training: bool, data_dir: str) -> List[str]:
    """``--cfg-options`` that make a job of ``cfg`` (``family``: classification | segmentation | detection) a quick
    CPU run on :func:`make_quick_data`'s sets: training reads the train loader only (validation off; epoch-based
    configs are shortened by :func:`quick_train_args`), a test the test loader only (detection: every box kept,
    score threshold 0, so that a detector of a few iterations still gives COCO metrics)."""
    loaders = ["train_dataloader"] if training else ["test_dataloader"]
    options = ["val_dataloader=None", "val_cfg=None", "val_evaluator=None",
               "default_hooks.logger.interval=1"] if training else []
    for name in loaders:
        ds, train = f"{name}.dataset", name.startswith("train")
        options += [f"{name}.num_workers=0", f"{name}.persistent_workers=False",
                    f"{name}.batch_size={(4 if family == 'classification' else 2) if train else 1}"]
        if family == "classification":
            options += [f"{ds}.root={data_dir}/imagenet", f"{ds}.transform.input_size={QUICK_SIZE}"]
        elif family == "segmentation":
            options.append(f"{ds}.data_root={data_dir}/composite")
        else:
            split, folder = ("train", "training") if train else ("val", "validation")
            options += [f"{ds}.data_root={data_dir}/composite/", f"{ds}.ann_file=annotations/instances_{split}.json",
                        f"{ds}.data_prefix.img=images/{folder}/"]
            if not train:
                options += [f"test_evaluator.ann_file={data_dir}/composite/annotations/instances_val.json",
                            "model.test_cfg.rcnn.score_thr=0.0"]
        options += _pipeline_options(cfg[name].dataset.get("pipeline"), f"{ds}.pipeline")
    if family == "classification":
        options.append(f"model.backbone.img_size={QUICK_SIZE}")
    elif family == "segmentation" and training:
        options += [f"model.data_preprocessor.size=({QUICK_SIZE},{QUICK_SIZE})",
                    f"train_cfg.max_iters={QUICK_SEG_ITERS}", f"default_hooks.checkpoint.interval={QUICK_SEG_ITERS}"]
    elif family == "detection":
        options.append(f"model.backbone.pretrain_img_size={QUICK_SIZE}")  # the 64-px PVT-S pretraining
    return options


def quick_train_args(cfg) -> Tuple[str, ...]:
    """``--epochs 1`` (tools/train.py shortens the whole lr schedule) for an epoch-based ``cfg``; applied to ``cfg``."""
    if "max_epochs" not in (cfg.get("train_cfg") or {}):
        return ()
    cfg.train_cfg.max_epochs = 1
    return ("--epochs", "1")


def make_quick_data(out_dir: str) -> None:
    """The data of a ``--quick`` plan: a synthetic ImageNet folder (``imagenet/``, 2 classes) and the composite
    downstream set (``composite/``: ADE20K-style folders and COCO json of 64-px images). Its COCO json lists COCO's
    80 categories (ids 1..80 in mmdet's class order; the composite's ten objects are 1..10), so mmdet's CocoDataset
    and CocoMetric with the real configs' COCO metainfo read it. ``quick-data.json`` is written last (the step's
    output)."""
    from mmdet.datasets import CocoDataset

    from classification.benchmarks.synthetic_imagenet import make_synthetic_imagenet
    from classification.transfer.downstream_data.composite import make_composite
    make_synthetic_imagenet(osp.join(out_dir, "imagenet"), processes=1, **QUICK_IMAGENET)
    info = make_composite(osp.join(out_dir, "composite"), verbose=False, **QUICK_COMPOSITE)
    categories = [dict(id=i, name=name, supercategory="coco") for i, name in
                  enumerate(CocoDataset.METAINFO["classes"], 1)]
    for split in info["splits"].values():
        with open(split["coco_json"]) as f:
            coco = json.load(f)
        if max(c["id"] for c in coco["categories"]) > len(categories):
            raise ValueError(f"{split['coco_json']}: more categories than COCO's {len(categories)}")
        coco["categories"] = categories
        with open(split["coco_json"], "w") as f:
            json.dump(coco, f)
    with open(osp.join(out_dir, QUICK_MARKER), "w") as f:
        json.dump(dict(imagenet=QUICK_IMAGENET, composite=QUICK_COMPOSITE), f)
    print(f"quick data written to {out_dir}")


# --------------------------------------------------------------------------------------------------- jobs
def _cfg_options(options: Sequence[str]) -> Tuple[str, ...]:
    return ("--cfg-options", *options) if options else ()


def build_jobs(work_root: str, rows: Sequence[str], methods: Sequence[str] = METHODS, gpus: int = 8,
               quick: bool = False, amp: Optional[str] = None) -> List[Job]:
    """The ordered jobs of ``rows`` (see :func:`resolve_rows`) for ``methods``: per method, per backbone config:
    pretrain, test, then per downstream row on that backbone: convert (once per target), fine-tune, test(s)."""
    table1, downstream = resolve_rows(rows)
    w, data_dir = osp.abspath(work_root), osp.join(osp.abspath(work_root), "data")
    jobs: List[Job] = []
    data_need: Tuple[str, ...] = ()
    if quick:
        jobs.append(Job("data.quick", "data", (data_dir,), osp.join(data_dir, QUICK_MARKER)))
        data_need = ("data.quick",)
    backbones = list(dict.fromkeys(table1 + [DOWNSTREAM[k].backbone for k in downstream]))
    for method in methods:
        converted: Dict[str, Tuple[str, ...]] = {}
        for model in backbones:
            row = TABLE1_BY_MODEL[model]
            stem = row.stem(method)
            config = f"configs/classification/{stem}.py"
            cfg = load_config(config, f"Table 1 row {row.name}, {method}")
            train_opts = quick_options(cfg, "classification", True, data_dir) if quick else []
            apply_options(cfg, train_opts)
            train_args = (quick_train_args(cfg) if quick else ()) + (("--amp", amp) if amp else ())
            pre_dir = osp.join(w, "pretrain", stem)
            ckpt = osp.join(pre_dir, final_checkpoint(cfg, config))
            jobs.append(Job(f"pretrain.{stem}", "pretrain",
                            (config, "--work-dir", pre_dir, "--resume", "auto", *train_args, *_cfg_options(train_opts)),
                            ckpt, data_need, gpus))
            test_opts = quick_options(cfg, "classification", False, data_dir) if quick else []
            jobs.append(Job(f"test.{stem}", "test",
                            (config, ckpt, "--work-dir", eval_dir(w, stem), *_cfg_options(test_opts)),
                            osp.join(eval_dir(w, stem), METRICS_FILE), (f"pretrain.{stem}",), gpus))
            for key in (k for k in downstream if DOWNSTREAM[k].backbone == model):
                jobs += _downstream_jobs(DOWNSTREAM[key], method, stem, ckpt, w, data_dir, data_need, gpus, quick,
                                         converted)
    return jobs


def _downstream_jobs(row, method: str, backbone_stem: str, backbone_ckpt: str, w: str, data_dir: str,
                     data_need: Tuple[str, ...], gpus: int, quick: bool, converted: Dict[str, tuple]) -> List[Job]:
    """Convert (unless this method's backbone was already converted to the row's target), fine-tune, test(s)."""
    jobs = []
    stem = row.stem(method)
    config = f"configs/{row.folder}/{stem}.py"
    cfg = load_config(config, f"{row.key}, {method}")
    dst = osp.join(w, "checkpoints", f"{backbone_stem}_{row.target}.pth")
    convert = f"convert.{backbone_stem}_{row.target}"
    convert_args = (backbone_ckpt, dst, "--to", row.target)
    if row.target == "mmseg-vit":  # position grid resized for the fine-tune backbone's img_size
        size = cfg.model.backbone.img_size
        convert_args += ("--img-size", *map(str, (size, size) if isinstance(size, int) else size))
    if convert not in converted:
        converted[convert] = convert_args
        jobs.append(Job(convert, "convert", convert_args, dst, (f"pretrain.{backbone_stem}",)))
    elif converted[convert] != convert_args:
        raise ValueError(f"{config}: needs {shlex.join(convert_args)}, another row {shlex.join(converted[convert])}")
    family = row.folder
    train_opts = [f"model.backbone.init_cfg.checkpoint={dst}"]
    train_opts += quick_options(cfg, family, True, data_dir) if quick else []
    apply_options(cfg, train_opts)
    train_args = quick_train_args(cfg) if quick else ()
    ft_dir = osp.join(w, "finetune", stem)
    ckpt = osp.join(ft_dir, final_checkpoint(cfg, config))
    jobs.append(Job(f"finetune.{stem}", "finetune", (config, "--work-dir", ft_dir, "--resume", "auto", *train_args,
                                                     *_cfg_options(train_opts)),
                    ckpt, (convert, *data_need), gpus))
    for suffix in row.tests:
        test_stem, test_config = stem + suffix, f"configs/{row.folder}/{stem}{suffix}.py"
        test_cfg = load_config(test_config, f"{row.key}, {method}, test") if suffix else cfg
        opts = quick_options(test_cfg, family, False, data_dir) if quick else []
        jobs.append(Job(f"test.{test_stem}", "test",
                        (test_config, ckpt, "--work-dir", eval_dir(w, test_stem), *_cfg_options(opts)),
                        osp.join(eval_dir(w, test_stem), METRICS_FILE), (f"finetune.{stem}",), gpus))
    return jobs


# --------------------------------------------------------------------------------------------------- scripts
def _word(arg: str) -> str:
    return '"$PY"' if arg == PY else shlex.quote(arg)


def command(job: Job, slurm: bool = False, gpus_per_node: int = 8) -> List[str]:
    """The command of ``job`` (words; ``$PY`` / ``$PARTITION`` expanded by the script). On slurm, training goes
    through ``tools/slurm_train.sh`` (srun, requeue on preemption) and a test uses at most one node's GPUs."""
    if job.kind in ("pretrain", "finetune"):
        if slurm:
            return ["tools/slurm_train.sh", "$PARTITION", job.name, job.args[0], str(job.gpus), *job.args[1:]]
        return ["tools/dist_train.sh", job.args[0], str(job.gpus), *job.args[1:]]
    if job.kind == "test":
        n = min(job.gpus, gpus_per_node) if slurm else job.gpus
        return ["tools/dist_test.sh", job.args[0], job.args[1], str(n), *job.args[2:]]
    tool = "tools/convert_checkpoint.py" if job.kind == "convert" else "tools/paper_tables.py"
    return [PY, tool, *(("quick-data",) if job.kind == "data" else ()), *job.args]


def _render(words: Sequence[str]) -> str:
    return " ".join('"$PARTITION"' if w == "$PARTITION" else _word(w) for w in words)


def _header(jobs: Sequence[Job], invocation: str, what: str) -> List[str]:
    return ["#!/usr/bin/env bash",
            f"# MixPro paper tables: {len(jobs)} jobs {what}",
            f"# Written by: {invocation}",
            "# (rerun that command to change the plan; `python tools/paper_tables.py collect WORK_ROOT` prints the "
            "tables)",
            "set -euo pipefail",
            f"ROOT={shlex.quote(ROOT)}",
            'cd "$ROOT"',
            'PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"',
            'export PYTHON="$PY" PYTHONPATH="$ROOT:${PYTHONPATH:-}"',
            f"TOTAL={len(jobs)}"]


def bash_script(jobs: Sequence[Job], invocation: str) -> str:
    """One node, one job after the other; a job whose output exists is skipped, so a rerun continues (training with
    ``--resume auto`` picks up its last checkpoint); a job that ends without its output stops the script."""
    lines = _header(jobs, invocation, "on one node, in order; run it again to continue after a failure or a kill")
    lines += ["step() {  # N NAME OUTPUT COMMAND...: run COMMAND unless OUTPUT exists; COMMAND must leave OUTPUT",
              '  local n=$1 name=$2 out=$3; shift 3',
              '  if [ -e "$out" ]; then echo "[$n/$TOTAL] skip $name: $out exists"; return 0; fi',
              '  echo "[$n/$TOTAL] $(date "+%F %T") start $name"',
              '  "$@"',
              '  if [ ! -e "$out" ]; then echo "[$n/$TOTAL] $name finished without $out" >&2; exit 1; fi',
              '  echo "[$n/$TOTAL] $(date "+%F %T") done $name"',
              "}"]
    for i, job in enumerate(jobs, 1):
        lines.append(f"step {i} {shlex.quote(job.name)} {shlex.quote(job.output)} {_render(command(job))}")
    lines.append('echo "all $TOTAL jobs done"')
    return "\n".join(lines) + "\n"


def slurm_resources(job: Job, gpus_per_node: int = 8, cpus_per_gpu: int = 5) -> str:
    """sbatch options of ``job``: training one task per GPU over as many nodes as needed (requeueable, for
    ``tools/slurm_train.sh``), a test one node's GPUs under one task (torchrun), the rest one CPU task."""
    if job.kind in ("pretrain", "finetune"):
        per_node = min(job.gpus, gpus_per_node)
        return (f"--nodes={-(-job.gpus // per_node)} --ntasks={job.gpus} --ntasks-per-node={per_node} "
                f"--gres=gpu:{per_node} --cpus-per-task={cpus_per_gpu} --requeue --open-mode=append "
                f"--export=ALL,GPUS_PER_NODE={per_node}")
    if job.gpus:
        n = min(job.gpus, gpus_per_node)
        return f"--nodes=1 --ntasks=1 --gres=gpu:{n} --cpus-per-task={cpus_per_gpu * n}"
    return "--nodes=1 --ntasks=1 --cpus-per-task=4"


def slurm_script(jobs: Sequence[Job], invocation: str, work_root: str, gpus_per_node: int = 8,
                 cpus_per_gpu: int = 5) -> str:
    """sbatch per job (``--parsable``), each with ``--dependency=afterok:`` the ids of the jobs it needs; a job
    whose output exists is not submitted and its dependents do not wait for it, so resubmitting submits only what
    is missing. Training: ``tools/slurm_train.sh`` in a requeueable allocation (one task per GPU)."""
    index = {job.name: i for i, job in enumerate(jobs, 1)}
    logs = osp.join(osp.abspath(work_root), "logs")
    lines = _header(jobs, invocation, "submitted with sbatch, each waiting (--dependency=afterok) for the jobs it "
                                      "needs")
    lines[4:4] = ["# Submit from a login node: PARTITION=<partition> bash THIS_SCRIPT; SBATCH_ARGS (e.g. "
                  "\"--time=3-00:00:00 --account=X\")", f"# is added to every sbatch call. Logs: {logs}/<job>-<id>.out"]
    lines += [': "${PARTITION:?set PARTITION to the slurm partition}"',
              f"LOGS={shlex.quote(logs)}",
              'mkdir -p "$LOGS"',
              "submit() {  # N NAME OUTPUT SBATCH-OPTIONS NEEDED-JOB-IDS COMMAND...: prints the job id (none: skipped)",
              '  local n=$1 name=$2 out=$3 res=() ids=() dep=() jid',
              '  read -ra res <<< "$4"',
              '  read -ra ids <<< "$5"',
              '  shift 5',
              '  if [ -e "$out" ]; then echo "[$n/$TOTAL] skip $name: $out exists" >&2; return 0; fi',
              '  if [ ${#ids[@]} -gt 0 ]; then dep=("--dependency=afterok:$(IFS=:; echo "${ids[*]}")"); fi',
              '  jid=$(sbatch --parsable --job-name="$name" --partition="$PARTITION" --output="$LOGS/%x-%j.out" \\',
              '        "${res[@]}" "${dep[@]}" ${SBATCH_ARGS:-} --wrap "$(printf "%q " "$@")")',
              '  jid=${jid%%;*}',
              '  echo "[$n/$TOTAL] $name: job $jid ${dep[*]}" >&2',
              '  echo "$jid"',
              "}"]
    for i, job in enumerate(jobs, 1):
        needs = " ".join(f"$j{index[n]}" for n in job.needs)
        lines.append(f'j{i}=$(submit {i} {shlex.quote(job.name)} {shlex.quote(job.output)} '
                     f'"{slurm_resources(job, gpus_per_node, cpus_per_gpu)}" "{needs}" '
                     f'{_render(command(job, slurm=True, gpus_per_node=gpus_per_node))})')
    lines.append('echo "submitted; progress: squeue -u $(id -un)" >&2')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------- CLI
def add_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="write the one-node and slurm scripts of the paper's runs")
    p.add_argument("--work-root", required=True, help="every run's work dir goes under it (see collect)")
    p.add_argument("--gpus", type=int, required=True, help="GPUs per training / test job (1 on a CPU host: gloo)")
    p.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS),
                   help=f"rows or groups, comma- or space-separated: {', '.join(ROW_GROUPS)}, a Table 1 model "
                        f"({', '.join(TABLE1_BY_MODEL)}), {', '.join(DOWNSTREAM)} (default: table2 table3)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    p.add_argument("--quick", action="store_true", help="tiny data, 64-px inputs, a few iterations: a CPU check")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="mixed precision for the pretraining jobs (GPU)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="slurm: GPUs of one node (default 8)")
    p.add_argument("--out", help="folder for the scripts (default WORK_ROOT/plan)")


def plan_main(args: argparse.Namespace) -> None:
    """Write ``one_node.sh``, ``slurm.sh`` and ``jobs.json`` (the jobs as data) into ``--out``."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or any(m not in METHODS for m in methods) or len(set(methods)) != len(methods):
        raise ValueError(f"--methods {args.methods!r}: choose distinct methods from {', '.join(METHODS)}")
    if args.gpus < 1 or args.gpus_per_node < 1:
        raise ValueError(f"--gpus and --gpus-per-node must be >= 1, got {args.gpus}, {args.gpus_per_node}")
    if args.quick and args.amp:
        raise ValueError("--amp needs GPUs; a --quick plan runs on the CPU")
    jobs = build_jobs(args.work_root, args.rows, methods, args.gpus, args.quick, args.amp)
    out = osp.abspath(args.out or osp.join(args.work_root, "plan"))
    os.makedirs(out, exist_ok=True)
    invocation = shlex.join(["tools/paper_tables.py", "plan", "--work-root", osp.abspath(args.work_root),
                             "--gpus", str(args.gpus), "--rows", *args.rows, "--methods", ",".join(methods)]
                            + ["--quick"] * args.quick + (["--amp", args.amp] if args.amp else []))
    scripts = {"one_node.sh": bash_script(jobs, invocation),
               "slurm.sh": slurm_script(jobs, invocation, args.work_root, args.gpus_per_node)}
    for name, text in scripts.items():
        with open(osp.join(out, name), "w") as f:
            f.write(text)
        os.chmod(osp.join(out, name), 0o755)
    with open(osp.join(out, "jobs.json"), "w") as f:
        json.dump([dict(vars(j)) for j in jobs], f, indent=1)
    kinds = {k: sum(j.kind == k for j in jobs) for k in ("pretrain", "convert", "finetune", "test")}
    print(f"{len(jobs)} jobs ({', '.join(f'{n} {k}' for k, n in kinds.items())}) for methods {', '.join(methods)}\n"
          f"one node: bash {osp.join(out, 'one_node.sh')}\n"
          f"slurm:    PARTITION=<partition> bash {osp.join(out, 'slurm.sh')}\n"
          f"tables:   python tools/paper_tables.py collect {osp.abspath(args.work_root)}")

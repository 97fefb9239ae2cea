"""``tools/paper_tables.py plan``: the jobs behind the paper's tables — per method, pretrain → test the
classifier → convert → fine-tune → test; the reference rows trained by mmseg's / mmdet's own configs, then tested —
as a one-node bash script and a slurm script (:mod:`.paper_scripts`). Every training job keeps the paper's total
batch and lr at any ``--gpus`` (:mod:`.paper_recipe`). Layout under the work root W, as ``collect`` reads it:
``W/pretrain/<stem>/``, ``W/checkpoints/<stem>_<target>[-<size>].pth``, ``W/finetune/<stem>/``,
``W/test/<stem>/metrics.json`` (the ``_ms`` test configs under their own stem).

``--quick`` keeps the models (DeiT-S, PVT-S, their heads) and shrinks everything else so that the same script runs
on a CPU: a first step writes tiny data sets into W/data (:func:`make_quick_data`), and every job gets
``--cfg-options`` for that data, 64-px inputs, batch 2–4, no loader workers, no validation while training and
one epoch / :data:`QUICK_SEG_ITERS` iterations (:func:`quick_options`, :func:`quick_train_args`); the reference rows
(whose ImageNet ResNets are downloads) are left out of it.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import os.path as osp
import re
import shlex
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from classification.engine.config_check import apply_cfg_options, load_config
from classification.foundation.atomic import atomic_write_text
from classification.foundation.errors import MissingPathError
from classification.foundation.host import ROOT
from classification.transfer.downstream_data.pascal_context import VOC

from .paper_recipe import recipe_options
from .paper_scripts import bash_script, slurm_script
from .paper_tables import (DEFAULT_ROWS, DOWNSTREAM, METHODS, METRICS_FILE, P14_MODELS, QUICK_MARKER, REFERENCES,
                           ROW_GROUPS, TABLE1_BY_MODEL, eval_dir, pretrain_dir)

QUICK_SIZE = 64  # classification input side, segmentation crop, detection short side (px)
QUICK_SEG_ITERS = 4
QUICK_IMAGENET = dict(classes=2, train_per_class=6, val_per_class=2, min_side=72, max_side=96)
QUICK_COMPOSITE = dict(num_train=8, num_val=4, size=QUICK_SIZE, seed=0)
QUICK_PASCAL_CONTEXT = dict(num_train=8, num_val=4, height=QUICK_SIZE, width=QUICK_SIZE, seed=0)
QUICK_LABEL_MAPS = dict(folder="imagenet_label_maps", top=5, grid=14, score=0.9)  # TokenMix's stand-in teacher
METHOD_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Job:
    """One step: ``kind`` is data | pretrain | test | convert | finetune; ``args`` follow the tool
    (train: CONFIG ARGS...; test: CONFIG CHECKPOINT ARGS...; convert / data: the tool's arguments); the step is
    done when ``output`` exists; ``needs``: names of the jobs that must finish first; ``gpus``: 0 = CPU only.
    Training jobs of a full plan: ``total_batch`` and ``lr`` of the paper's recipe, ``recipe`` the sentence the
    scripts print (:class:`.paper_recipe.Recipe`); 0 / None / '' otherwise."""

    name: str
    kind: str
    args: Tuple[str, ...]
    output: str
    needs: Tuple[str, ...] = ()
    gpus: int = 0
    total_batch: int = 0
    lr: Optional[float] = None
    recipe: str = ""


# --------------------------------------------------------------------------------------------------- rows
def resolve_rows(spec: Sequence[str]) -> Tuple[List[str], List[str], List[str]]:
    """Row names and groups (table1, table2, table3, ade20k, references, a Table 1 model such as deit-s, a
    downstream row such as pascal-context-mask, a reference row) → (Table 1 models, downstream rows, reference rows),
    each once, in the tables' order."""
    chosen = set()
    for item in (s.strip() for part in spec for s in part.split(",")):
        if item in ROW_GROUPS:
            chosen.update(ROW_GROUPS[item])
        elif item in TABLE1_BY_MODEL or item in DOWNSTREAM or item in REFERENCES:
            chosen.add(item)
        elif item:
            raise ValueError(f"unknown row {item!r}: choose from {', '.join(ROW_GROUPS)}, "
                             f"{', '.join(TABLE1_BY_MODEL)}, {', '.join(DOWNSTREAM)}, {', '.join(REFERENCES)}")
    if not chosen:
        raise ValueError("no rows chosen")
    return ([m for m in TABLE1_BY_MODEL if m in chosen], [k for k in DOWNSTREAM if k in chosen],
            [k for k in REFERENCES if k in chosen])


def check_methods(methods: Sequence[str], rows: Sequence[str], deit_patch: int = 16) -> None:
    """Any method whose configs exist for every chosen row (``configs/classification/<stem>.py`` of the Table 1 rows
    and of the downstream rows' backbones, and the downstream rows' fine-tune and test configs); one ValueError
    naming, per method, the configs it lacks. Reference rows take no method."""
    if not methods or len(set(methods)) != len(methods) or not all(METHOD_NAME.fullmatch(m) for m in methods):
        raise ValueError(f"--methods {','.join(methods)!r}: give distinct method names (lower case, digits, '-')")
    table1, downstream, _ = resolve_rows(rows)
    lacking = []
    for method in methods:
        wanted = [f"configs/classification/{TABLE1_BY_MODEL[m].stem(method, _patch(m, method, deit_patch))}.py"
                  for m in table1]
        for key in downstream:
            row = DOWNSTREAM[key]
            wanted += [f"configs/classification/{TABLE1_BY_MODEL[row.backbone].stem(method)}.py"]
            wanted += [f"configs/{row.folder}/{row.stem(method)}{suffix}.py" for suffix in row.tests]
        missing = [p for p in dict.fromkeys(wanted) if not osp.isfile(osp.join(ROOT, p))]
        if missing:
            lacking.append(f"method {method!r} has no config for the rows asked: {', '.join(missing)}")
    if lacking:
        raise ValueError("; ".join(lacking))


def _patch(model: str, method: str, deit_patch: int) -> int:
    """The patch of ``model``'s Table 1 job: 14 for MixPro's DeiT rows under ``--deit-patch 14``, else 16."""
    return 14 if deit_patch == 14 and method == "mixpro" and model in P14_MODELS else 16


_LOADED: Dict[str, object] = {}  # absolute path → Config (configs do not change while a plan is written)


@functools.lru_cache(maxsize=None)
def _package_configs(package_path: str) -> Dict[str, str]:
    """Config name → path of an installed OpenMMLab package's model zoo (its ``.mim/model-index.yml`` metafiles; the
    first entry of a name wins), read once — what mmengine 0.10.7 re-reads for every ``mmseg::`` / ``mmdet::`` base."""
    from mmengine.fileio import load
    found: Dict[str, str] = {}
    for meta in load(osp.join(package_path, ".mim", "model-index.yml"))["Import"]:
        for model in load(osp.join(package_path, ".mim", meta))["Models"]:
            if "Config" in model:
                found.setdefault(model["Config"].partition("/")[-1], model["Config"])
    return found


def _external_cfg_path(package_path: str, cfg_file: str) -> str:
    """mmengine's ``_get_external_cfg_path`` over :func:`_package_configs`: the model-zoo config's path, ValueError
    for a name without an entry (a ``_base_`` file, which mmengine then takes from the package folder)."""
    configs = _package_configs(package_path)
    name = cfg_file.split(".")[0]
    if name not in configs:
        raise ValueError(f"{name} is not a model-zoo config of {package_path}")
    return osp.join(package_path, configs[name])


def plan_config(path: str, what: str):
    """The config at ``path`` (relative to the repository) as the plan reads it: the one loader
    (:func:`~classification.engine.config_check.load_config`) without the config's custom imports, a copy of the one
    read first in this process; MissingPathError naming ``what`` for a missing file. mmengine's look-ups of external
    bases are remembered meanwhile (they took about 3 s per Segmenter config: every metafile read and pkg_resources
    reloaded for each base)."""
    from unittest import mock

    import mmengine.config.config as mm_config
    full = osp.join(ROOT, path)
    if full not in _LOADED:
        with mock.patch.object(mm_config, "_get_external_cfg_path", _external_cfg_path), \
                mock.patch.object(mm_config, "is_installed", functools.lru_cache(maxsize=None)(mm_config.is_installed)):
            try:
                _LOADED[full] = load_config(full, import_custom_modules=False)
            except MissingPathError:
                raise MissingPathError(f"{what}: config {path} does not exist") from None
    return copy.deepcopy(_LOADED[full])


def apply_options(cfg, options: Sequence[str]) -> None:
    """Merge ``KEY=VALUE`` strings into ``cfg`` the way ``tools/train.py --cfg-options`` does: parsed as its
    ``DictAction`` parses them, checked and merged by
    :func:`~classification.engine.config_check.apply_cfg_options` (a key that nothing reads is a UserError)."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument("--o", nargs="+", action=DictAction)
    if options:
        apply_cfg_options(cfg, parser.parse_args(["--o", *options]).o)


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
    """Shrink the image scales of a pipeline (mmseg/mmdet RandomResize, RandomCrop, Resize), also the absolute Resize
    scales among a TestTimeAug's alternatives (Segmenter's Pascal Context multi-scale test: every view at 64 px)."""
    options, s = [], QUICK_SIZE
    for i, t in enumerate(pipeline or []):
        if t.get("type") == "RandomResize":
            options.append(f"{prefix}.{i}.scale=({4 * s},{s})")
        elif t.get("type") == "RandomCrop":
            options.append(f"{prefix}.{i}.crop_size=({s},{s})")
        elif t.get("type") == "Resize" and "scale" in t:
            options.append(f"{prefix}.{i}.scale=({4 * s},{s})")
        elif t.get("type") == "TestTimeAug":
            for j, alt in enumerate(t["transforms"][0]):
                key = f"{prefix}.{i}.transforms.0.{j}"
                steps = ([(f"{key}.transforms.{k}", a) for k, a in enumerate(alt["transforms"])]
                         if alt.get("type") == "Compose" else [(key, alt)])
                options += [f"{k}.scale=({4 * s},{s})" for k, a in steps if a.get("type") == "Resize" and "scale" in a]
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
            if "label_root" in cfg[name].dataset:  # TokenMix with a teacher: the quick data's stand-in maps
                options.append(f"{ds}.label_root={data_dir}/{QUICK_LABEL_MAPS['folder']}")
            if not train:  # top-5 of the quick set's 2 classes would count every prediction
                options.append("test_evaluator.topk=(1,)")
        elif family == "segmentation":
            pascal = cfg[name].dataset.get("type") == "PascalContextDataset"  # Table 2: the converter's layout
            options.append(f"{ds}.data_root={data_dir}/" + (f"pascal_context/{VOC}" if pascal else "composite"))
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


def make_quick_label_maps(imagenet: str, out_dir: str) -> None:
    """A stand-in teacher for TokenMix's label-map pipeline on the quick ImageNet ``imagenet``: per training image a
    TokenLabeling ``.pt`` map under ``out_dir`` (:func:`~classification.data.label_maps.label_map_path`), (2, k, G, G)
    half floats whose every cell has the image's class c first (score ``score``), then c + 1 … c + k − 1 (mod 1000)
    sharing the rest (``QUICK_LABEL_MAPS``: k = ``top``, G = ``grid``)."""
    import torch

    from classification.data.imagenet import ImageNetFolder
    from classification.data.label_maps import label_map_path
    top, grid, score = QUICK_LABEL_MAPS["top"], QUICK_LABEL_MAPS["grid"], QUICK_LABEL_MAPS["score"]
    scores = torch.tensor([score] + [(1 - score) / (top - 1)] * (top - 1))
    for path, label in ImageNetFolder(imagenet, "train").samples:
        ids = (label + torch.arange(top)) % 1000
        target = label_map_path(out_dir, path)
        os.makedirs(osp.dirname(target), exist_ok=True)
        cells = torch.stack([scores, ids.float()])[:, :, None, None].expand(2, top, grid, grid)
        torch.save(cells.half().contiguous(), target)


def make_quick_data(out_dir: str) -> None:
    """The data of a ``--quick`` plan: a synthetic ImageNet folder (``imagenet/``, 2 classes) with a stand-in teacher's
    label maps for TokenMix (``imagenet_label_maps/``, :func:`make_quick_label_maps`), a tiny Pascal Context
    (``pascal_context/``, the converter's layout) and the composite downstream set (``composite/``: ADE20K-style
    folders and COCO json of 64-px images). Its COCO json lists COCO's
    80 categories (ids 1..80 in mmdet's class order; the composite's ten objects are 1..10), so mmdet's CocoDataset
    and CocoMetric with the real configs' COCO metainfo read it. ``quick-data.json`` is written last (the step's
    output)."""
    from mmdet.datasets import CocoDataset

    from classification.data.synthetic_imagenet import make_synthetic_imagenet
    from classification.transfer.downstream_data.composite import make_composite
    from classification.transfer.downstream_data.pascal_context import make_pascal_context
    make_synthetic_imagenet(osp.join(out_dir, "imagenet"), processes=1, **QUICK_IMAGENET)
    make_quick_label_maps(osp.join(out_dir, "imagenet"), osp.join(out_dir, QUICK_LABEL_MAPS["folder"]))
    make_pascal_context(osp.join(out_dir, "pascal_context"), **QUICK_PASCAL_CONTEXT)
    info = make_composite(osp.join(out_dir, "composite"), verbose=False, **QUICK_COMPOSITE)
    categories = [dict(id=i, name=name, supercategory="coco") for i, name in
                  enumerate(CocoDataset.METAINFO["classes"], 1)]
    for split in info["splits"].values():
        with open(split["coco_json"]) as f:
            coco = json.load(f)
        if max(c["id"] for c in coco["categories"]) > len(categories):
            raise ValueError(f"{split['coco_json']}: more categories than COCO's {len(categories)}")
        coco["categories"] = categories
        atomic_write_text(split["coco_json"], json.dumps(coco))
    atomic_write_text(osp.join(out_dir, QUICK_MARKER), json.dumps(
        dict(imagenet=QUICK_IMAGENET, label_maps=QUICK_LABEL_MAPS, pascal_context=QUICK_PASCAL_CONTEXT,
             composite=QUICK_COMPOSITE)))
    print(f"quick data written to {out_dir}")


# --------------------------------------------------------------------------------------------------- jobs
def _cfg_options(options: Sequence[str]) -> Tuple[str, ...]:
    return ("--cfg-options", *options) if options else ()


def _training(name: str, kind: str, config: str, stem: str, cfg, work_dir: str, options: List[str],
              extra_args: Tuple[str, ...], needs: Tuple[str, ...], gpus: int, quick: bool) -> Job:
    """A pretrain / finetune job of ``cfg``: the paper's recipe at ``gpus`` (full plans) merged into ``cfg`` with
    ``options``, output the checkpoint its training ends with."""
    recipe = None
    if not quick:
        recipe, recipe_opts = recipe_options(cfg, stem, gpus)
        options = recipe_opts + options
    apply_options(cfg, options)
    ckpt = osp.join(work_dir, final_checkpoint(cfg, config))
    return Job(name, kind, (config, "--work-dir", work_dir, "--resume", "auto", *extra_args, *_cfg_options(options)),
               ckpt, needs, recipe.gpus if recipe else gpus, recipe.total_batch if recipe else 0,
               recipe.lr if recipe else None, recipe.describe() if recipe else "")


def build_jobs(work_root: str, rows: Sequence[str], methods: Sequence[str] = METHODS, gpus: int = 8,
               quick: bool = False, amp: Optional[str] = None, deit_patch: int = 16) -> List[Job]:
    """The ordered jobs of ``rows`` (see :func:`resolve_rows`) for ``methods``: per method, per backbone config:
    pretrain, test, then per downstream row on that backbone: convert (once per target and size), fine-tune,
    test(s); then the reference rows: train, test(s) (not in a ``quick`` plan). ``deit_patch`` 14: MixPro's Table 1
    DeiT rows in the official code's patch-14 setting (the downstream rows keep their patch-16 backbones)."""
    table1, downstream, references = resolve_rows(rows)
    check_methods(methods, rows, deit_patch)
    w, data_dir = osp.abspath(work_root), osp.join(osp.abspath(work_root), "data")
    jobs: List[Job] = []
    data_need: Tuple[str, ...] = ()
    if quick:
        jobs.append(Job("data.quick", "data", (data_dir,), osp.join(data_dir, QUICK_MARKER)))
        data_need = ("data.quick",)
    for method in methods:
        converted: Dict[str, Tuple[str, ...]] = {}
        backbones = [(m, _patch(m, method, deit_patch)) for m in table1]
        backbones = list(dict.fromkeys(backbones + [(DOWNSTREAM[k].backbone, 16) for k in downstream]))
        for model, patch in backbones:
            row = TABLE1_BY_MODEL[model]
            stem = row.stem(method, patch)
            config = f"configs/classification/{stem}.py"
            cfg = plan_config(config, f"Table 1 row {row.name}, {method}")
            train_opts = quick_options(cfg, "classification", True, data_dir) if quick else []
            args = (quick_train_args(cfg) if quick else ()) + (("--amp", amp) if amp else ())
            pre = _training(f"pretrain.{stem}", "pretrain", config, stem, cfg, pretrain_dir(w, stem), train_opts,
                            args, data_need, gpus, quick)
            jobs.append(pre)
            test_opts = quick_options(cfg, "classification", False, data_dir) if quick else []
            jobs.append(Job(f"test.{stem}", "test",
                            (config, pre.output, "--work-dir", eval_dir(w, stem), *_cfg_options(test_opts)),
                            osp.join(eval_dir(w, stem), METRICS_FILE), (pre.name,), gpus))
            for key in (k for k in downstream if DOWNSTREAM[k].backbone == model and patch == 16):
                jobs += _downstream_jobs(DOWNSTREAM[key], method, stem, pre.output, w, data_dir, data_need, gpus,
                                         quick, converted)
    for key in ([] if quick else references):
        jobs += _reference_jobs(REFERENCES[key], w, gpus)
    return jobs


def _tests(folder: str, stem: str, tests: Sequence[str], cfg, ckpt: str, w: str, needs: str, gpus: int,
           what: str, quick_opts=None) -> List[Job]:
    """The test jobs of a fine-tuned ``stem`` (one per suffix of ``tests``; ``quick_opts(cfg)``: their options)."""
    jobs = []
    for suffix in tests:
        test_stem, test_config = stem + suffix, f"configs/{folder}/{stem}{suffix}.py"
        test_cfg = plan_config(test_config, f"{what}, test") if suffix else cfg
        opts = quick_opts(test_cfg) if quick_opts else []
        jobs.append(Job(f"test.{test_stem}", "test",
                        (test_config, ckpt, "--work-dir", eval_dir(w, test_stem), *_cfg_options(opts)),
                        osp.join(eval_dir(w, test_stem), METRICS_FILE), (needs,), gpus))
    return jobs


def _downstream_jobs(row, method: str, backbone_stem: str, backbone_ckpt: str, w: str, data_dir: str,
                     data_need: Tuple[str, ...], gpus: int, quick: bool, converted: Dict[str, tuple]) -> List[Job]:
    """Convert (unless this method's backbone was already converted to the row's target and size), fine-tune,
    test(s)."""
    jobs = []
    stem = row.stem(method)
    config = f"configs/{row.folder}/{stem}.py"
    cfg = plan_config(config, f"{row.key}, {method}")
    target = row.target
    convert_args: Tuple[str, ...] = ()
    if row.target == "mmseg-vit":  # position grid resized for the fine-tune backbone's img_size
        size = cfg.model.backbone.img_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        convert_args, target = ("--img-size", *map(str, size)), f"{row.target}-{size[0]}"
    dst = osp.join(w, "checkpoints", f"{backbone_stem}_{target}.pth")
    convert = f"convert.{backbone_stem}_{target}"
    convert_args = (backbone_ckpt, dst, "--to", row.target, *convert_args)
    if convert not in converted:
        converted[convert] = convert_args
        jobs.append(Job(convert, "convert", convert_args, dst, (f"pretrain.{backbone_stem}",)))
    family = row.folder
    train_opts = [f"model.backbone.init_cfg.checkpoint={dst}"]
    train_opts += quick_options(cfg, family, True, data_dir) if quick else []
    args = quick_train_args(cfg) if quick else ()
    fine = _training(f"finetune.{stem}", "finetune", config, stem, cfg, osp.join(w, "finetune", stem), train_opts,
                     args, (convert, *data_need), gpus, quick)
    jobs.append(fine)
    quick_opts = (lambda c: quick_options(c, family, False, data_dir)) if quick else None
    return jobs + _tests(row.folder, stem, row.tests, cfg, fine.output, w, fine.name, gpus, f"{row.key}, {method}",
                         quick_opts)


def _reference_jobs(ref, w: str, gpus: int) -> List[Job]:
    """Train the reference row's config (mmseg's / mmdet's own, ImageNet weights it downloads), test(s)."""
    config = f"configs/{ref.folder}/{ref.stem}.py"
    cfg = plan_config(config, f"reference row {ref.name}")
    train = _training(f"finetune.{ref.stem}", "finetune", config, ref.stem, cfg, osp.join(w, "finetune", ref.stem),
                      [], (), (), gpus, False)
    return [train] + _tests(ref.folder, ref.stem, ref.tests, cfg, train.output, w, train.name, gpus,
                            f"reference row {ref.name}")


# --------------------------------------------------------------------------------------------------- CLI
def add_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="write the one-node and slurm scripts of the paper's runs")
    p.add_argument("--work-root", required=True, help="every run's work dir goes under it (see collect)")
    p.add_argument("--gpus", type=int, required=True,
                   help="GPUs per job (1 on a CPU host: gloo); every training job keeps the paper's total batch and "
                        "lr at any count (per-GPU batch, gradient accumulation)")
    p.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS),
                   help=f"rows or groups, comma- or space-separated: {', '.join(ROW_GROUPS)}, a Table 1 model "
                        f"({', '.join(TABLE1_BY_MODEL)}), {', '.join(DOWNSTREAM)}, {', '.join(REFERENCES)} "
                        f"(default: table2 table3, with their reference rows)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated methods (default: the paper's " + ",".join(METHODS) + "); any method "
                        "whose configs exist for the rows asked")
    p.add_argument("--deit-patch", type=int, choices=(16, 14), default=16,
                   help="14: MixPro's Table 1 DeiT rows in the official code's patch-14 setting (deit-*-p14 "
                        "configs; docs/methods.md, 'Paper tables'); downstream rows keep patch 16")
    p.add_argument("--quick", action="store_true", help="tiny data, 64-px inputs, a few iterations: a CPU check")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="mixed precision for the pretraining jobs (GPU)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="slurm: GPUs of one node (default 8)")
    p.add_argument("--out", help="folder for the scripts (default WORK_ROOT/plan)")


def plan_main(args: argparse.Namespace) -> None:
    """Write ``one_node.sh``, ``slurm.sh`` and ``jobs.json`` (the jobs as data) into ``--out``."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.gpus < 1 or args.gpus_per_node < 1:
        raise ValueError(f"--gpus and --gpus-per-node must be >= 1, got {args.gpus}, {args.gpus_per_node}")
    if args.quick and args.amp:
        raise ValueError("--amp needs GPUs; a --quick plan runs on the CPU")
    jobs = build_jobs(args.work_root, args.rows, methods, args.gpus, args.quick, args.amp, args.deit_patch)
    out = osp.abspath(args.out or osp.join(args.work_root, "plan"))
    os.makedirs(out, exist_ok=True)
    invocation = shlex.join(["tools/paper_tables.py", "plan", "--work-root", osp.abspath(args.work_root),
                             "--gpus", str(args.gpus), "--rows", *args.rows, "--methods", ",".join(methods)]
                            + (["--deit-patch", "14"] if args.deit_patch == 14 else [])
                            + ["--quick"] * args.quick + (["--amp", args.amp] if args.amp else []))
    scripts = {"one_node.sh": bash_script(jobs, invocation),
               "slurm.sh": slurm_script(jobs, invocation, args.work_root, args.gpus_per_node)}
    for name, text in scripts.items():
        atomic_write_text(osp.join(out, name), text)
        os.chmod(osp.join(out, name), 0o755)
    atomic_write_text(osp.join(out, "jobs.json"), json.dumps([dict(vars(j)) for j in jobs], indent=1))
    kinds = {k: sum(j.kind == k for j in jobs) for k in ("pretrain", "convert", "finetune", "test")}
    dropped = args.quick and resolve_rows(args.rows)[2]
    print(f"{len(jobs)} jobs ({', '.join(f'{n} {k}' for k, n in kinds.items())}) for methods {', '.join(methods)}\n"
          + (f"reference rows left out of a --quick plan: {', '.join(dropped)}\n" if dropped else "")
          + f"one node: bash {osp.join(out, 'one_node.sh')}\n"
          f"slurm:    PARTITION=<partition> bash {osp.join(out, 'slurm.sh')}\n"
          f"tables:   python tools/paper_tables.py collect {osp.abspath(args.work_root)}")

"""The MixPro paper's Tables 1–3 at full scale (``tools/paper_tables.py``): the rows, the paper's numbers, and the
collector that reads each run's own ``metrics.json`` (written by ``tools/test.py`` into its work dir) from a work
root laid out by ``plan`` (:mod:`.paper_plan`) and prints the tables in the paper's layout.

- :data:`TABLE1`: each Table 1 row's classification config stem (``{model}_{method}_8xb128-{schedule}_in1k``; the
  official MixPro code's patch-14 DeiT as ``{model}-p14_mixpro_...``);
- :data:`DOWNSTREAM`: Table 2's heads (DeiT-S Segmenter on Pascal Context, 60 classes), Table 3's detector (PVT-S,
  COCO), and the ADE20K heads (an extra, not the paper's table), with fine-tune, conversion and test configs;
- :data:`REFERENCES`: the tables' reference rows (DeepLabv3+ R-101, Mask R-CNN R-50 / R-101), mmseg's / mmdet's own
  configs, with the paper's and the model zoo's numbers;
- :data:`PAPER`, :data:`REPORTED`: every number of the paper's three tables; other methods' ImageNet top-1 as their
  authors report it;
- :func:`collect`: every cell, ours (Table 1: final and best epoch), the paper's, ours − paper; :func:`markdown`.
"""
from __future__ import annotations

import glob
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from classification.engine.launch import METRICS_FILE  # tools/test.py: <work-dir>/metrics.json, {"metrics": {...}, ...}

from .stats import display_name

METHODS = ("baseline", "transmix", "mixpro")  # the paper's three columns
QUICK_MARKER = "quick-data.json"  # written into WORK_ROOT/data by the first job of a --quick plan


@dataclass(frozen=True)
class Table1Row:
    """A Table 1 row: ``name`` as printed, ``model`` and ``schedule`` give the config stem of each method."""

    name: str
    model: str
    schedule: str

    def stem(self, method: str, patch: int = 16) -> str:
        """The config stem; ``patch`` 14: the official MixPro code's DeiT (``deit-*-p14``, 56-px MaskMix cells)."""
        model = f"{self.model}-p14" if patch == 14 else self.model
        return f"{model}_{method}_8xb128-{self.schedule}_in1k"


TABLE1 = tuple(Table1Row(*r) for r in (
    ("DeiT-T", "deit-t", "300e"), ("DeiT-S", "deit-s", "300e"), ("DeiT-B", "deit-b", "300e"),
    ("PVT-T", "pvt-t", "300e"), ("PVT-S", "pvt-s", "300e"), ("PVT-M", "pvt-m", "300e"), ("PVT-L", "pvt-l", "300e"),
    ("CaiT-XXS", "cait-xxs36", "400e"), ("XCiT-T", "xcit-t24", "400e"), ("XCiT-S", "xcit-s12", "400e"),
    ("XCiT-M", "xcit-m24", "400e"), ("XCiT-L", "xcit-l24", "400e"), ("CA-Swin-T", "ca-swin-t", "300e"),
    ("CA-Swin-S", "ca-swin-s", "300e")))
TABLE1_BY_MODEL = {r.model: r for r in TABLE1}
P14_MODELS = ("deit-t", "deit-s", "deit-b")  # rows with the official code's patch-14 MixPro config


@dataclass(frozen=True)
class DownstreamRow:
    """A Table 2 head, the Table 3 detector or an extra: the Table 1 ``backbone`` row it fine-tunes, the converter
    ``target``, the fine-tune config stem (``{method}`` in it), the suffixes of its test configs ('' and '_ms'),
    its config folder, and whether it is a row of the paper's tables (``paper``) or an extra."""

    key: str
    table: str
    name: str
    backbone: str
    target: str
    finetune: str
    tests: Tuple[str, ...]
    folder: str
    paper: bool = True

    def stem(self, method: str) -> str:
        return self.finetune.format(method=method)


DOWNSTREAM = {
    "pascal-context-linear": DownstreamRow(
        "pascal-context-linear", "2", "Linear", "deit-s", "mmseg-vit",
        "segmenter-linear_deit-s_{method}_8xb2-80k_pascal-context-480x480", ("", "_ms"), "segmentation"),
    "pascal-context-mask": DownstreamRow(
        "pascal-context-mask", "2", "Segmenter mask head", "deit-s", "mmseg-vit",
        "segmenter-mask_deit-s_{method}_8xb2-80k_pascal-context-480x480", ("", "_ms"), "segmentation"),
    "coco-mask-rcnn": DownstreamRow("coco-mask-rcnn", "3", "PVT-S", "pvt-s", "mmdet-pvt",
                                    "mask-rcnn_pvt-s_{method}_fpn_8xb2-1x_coco", ("",), "detection"),
    "ade20k-linear": DownstreamRow("ade20k-linear", "2", "Linear (ADE20K)", "deit-s", "mmseg-vit",
                                   "segmenter-linear_deit-s_{method}_8xb1-160k_ade20k-512x512", ("", "_ms"),
                                   "segmentation", paper=False),
    "ade20k-mask": DownstreamRow("ade20k-mask", "2", "Segmenter mask head (ADE20K)", "deit-s", "mmseg-vit",
                                 "segmenter-mask_deit-s_{method}_8xb1-160k_ade20k-512x512", ("", "_ms"),
                                 "segmentation", paper=False),
}


@dataclass(frozen=True)
class ReferenceRow:
    """A reference row: trained from ImageNet weights the config downloads (no pretraining of ours), by mmseg's /
    mmdet's own config (``stem``, with ``tests`` suffixes); ``paper`` and ``published`` (the model zoo's result of
    that config, ``source``): column → value (None: not published)."""

    key: str
    table: str
    name: str
    stem: str
    tests: Tuple[str, ...]
    folder: str
    paper: Tuple[Tuple[str, float], ...]
    published: Tuple[Tuple[str, Optional[float]], ...]
    source: str


REFERENCES = {
    "pascal-context-deeplabv3plus": ReferenceRow(
        "pascal-context-deeplabv3plus", "2", "DeepLabv3+ R-101",
        "deeplabv3plus_r101-d8_4xb4-40k_pascal-context-480x480",
        ("", "_ms"), "segmentation", (("mIoU", 47.3), ("mIoU +MS", 48.5)), (("mIoU", 47.30), ("mIoU +MS", 48.47)),
        "mmseg 1.2.2 model zoo (configs/deeplabv3plus/metafile.yaml), Pascal Context 480x480 40k"),
    "coco-mask-rcnn-r50": ReferenceRow(
        "coco-mask-rcnn-r50", "3", "ResNet-50", "mask-rcnn_r50_fpn_8xb2-1x_coco", ("",), "detection",
        (("box AP", 38.0), ("box AP50", 58.6), ("box AP75", 41.4), ("mask AP", 34.4), ("mask AP50", 57.1),
         ("mask AP75", 36.7)),
        (("box AP", 38.2), ("mask AP", 34.7)), "mmdet 3.3.0 model zoo (configs/mask_rcnn/metafile.yml), 1x"),
    "coco-mask-rcnn-r101": ReferenceRow(
        "coco-mask-rcnn-r101", "3", "ResNet-101", "mask-rcnn_r101_fpn_8xb2-1x_coco", ("",), "detection",
        (("box AP", 40.4), ("box AP50", 61.1), ("box AP75", 44.2), ("mask AP", 36.4), ("mask AP50", 57.7),
         ("mask AP75", 38.8)),
        (("box AP", 40.0), ("mask AP", 36.1)), "mmdet 3.3.0 model zoo (configs/mask_rcnn/metafile.yml), 1x"),
}
ROW_GROUPS = {"table1": tuple(r.model for r in TABLE1),
              "table2": ("pascal-context-linear", "pascal-context-mask", "pascal-context-deeplabv3plus"),
              "table3": ("coco-mask-rcnn", "coco-mask-rcnn-r50", "coco-mask-rcnn-r101"),
              "ade20k": ("ade20k-linear", "ade20k-mask"), "references": tuple(REFERENCES)}
DEFAULT_ROWS = ("table2", "table3")

# Table 3 columns: (column of PAPER, metrics.json key of mmdet's CocoMetric, in [0, 1]; the paper prints percent)
COCO_COLUMNS = (("box AP", "coco/bbox_mAP"), ("box AP50", "coco/bbox_mAP_50"), ("box AP75", "coco/bbox_mAP_75"),
                ("mask AP", "coco/segm_mAP"), ("mask AP50", "coco/segm_mAP_50"), ("mask AP75", "coco/segm_mAP_75"))

# The MixPro paper (ICLR 2023), Tables 1–3: (table, row, column) -> (baseline, TransMix, MixPro). Table 1: ImageNet
# top-1; Table 2: Pascal Context (60 classes) mIoU single-scale ('mIoU') and multi-scale + flip ('mIoU +MS');
# Table 3: COCO Mask R-CNN 1x. The reference rows' numbers: REFERENCES.
PAPER: Dict[Tuple[str, str, str], Tuple[float, float, float]] = {
    ("1", "DeiT-T", "top-1"): (72.2, 72.6, 73.8), ("1", "DeiT-S", "top-1"): (79.8, 80.7, 81.3),
    ("1", "DeiT-B", "top-1"): (81.8, 82.4, 82.9), ("1", "PVT-T", "top-1"): (75.1, 75.5, 76.7),
    ("1", "PVT-S", "top-1"): (79.8, 80.5, 81.2), ("1", "PVT-M", "top-1"): (81.2, 82.1, 82.7),
    ("1", "PVT-L", "top-1"): (81.7, 82.4, 82.9), ("1", "CaiT-XXS", "top-1"): (79.1, 79.8, 80.6),
    ("1", "XCiT-T", "top-1"): (79.4, 80.1, 81.2), ("1", "XCiT-S", "top-1"): (82.0, 82.3, 82.9),
    ("1", "XCiT-M", "top-1"): (82.7, 83.4, 84.1), ("1", "XCiT-L", "top-1"): (82.9, 83.8, 84.7),
    ("1", "CA-Swin-T", "top-1"): (81.6, 81.8, 82.8), ("1", "CA-Swin-S", "top-1"): (82.8, 83.2, 83.7),
    ("2", "Linear", "mIoU"): (49.1, 49.7, 50.3), ("2", "Linear", "mIoU +MS"): (49.6, 50.3, 50.9),
    ("2", "Segmenter mask head", "mIoU"): (49.7, 50.6, 51.1),
    ("2", "Segmenter mask head", "mIoU +MS"): (50.5, 51.2, 51.6),
    ("3", "PVT-S", "box AP"): (40.4, 40.9, 41.4), ("3", "PVT-S", "box AP50"): (62.9, 63.8, 64.2),
    ("3", "PVT-S", "box AP75"): (43.8, 44.0, 44.4), ("3", "PVT-S", "mask AP"): (37.8, 38.4, 38.9),
    ("3", "PVT-S", "mask AP50"): (60.1, 60.7, 61.1), ("3", "PVT-S", "mask AP75"): (40.3, 41.3, 41.7),
}

# ImageNet-1k top-1 of other mixing methods on Table 1 rows as their authors report it in their own READMEs (not
# numbers of the MixPro paper): method -> {Table 1 model: top-1}
REPORTED: Dict[str, Dict[str, float]] = {
    "tlalign": {"deit-t": 73.2, "deit-s": 80.6, "deit-b": 82.3},
    "smmix": {"deit-t": 73.6, "deit-s": 81.1, "pvt-t": 76.4, "pvt-s": 81.0, "pvt-m": 82.2, "pvt-l": 82.7},
    "tokenmix": {"deit-t": 73.2, "deit-s": 80.8, "deit-b": 82.9},
}


def paper_value(table: str, row: str, column: str, method: str) -> float:
    return PAPER[(table, row, column)][METHODS.index(method)]


# --------------------------------------------------------------------------------------------------- read
def eval_dir(work_root: str, test_stem: str) -> str:
    """Where ``plan`` puts the evaluation of the config ``test_stem`` (and so its metrics.json)."""
    return osp.join(work_root, "test", test_stem)


def pretrain_dir(work_root: str, stem: str) -> str:
    """Where ``plan`` puts the training of the classification config ``stem``."""
    return osp.join(work_root, "pretrain", stem)


def is_quick_root(work_root: str) -> bool:
    """Whether ``work_root`` was laid out by a ``--quick`` plan (its first job wrote ``data/quick-data.json``)."""
    return osp.isfile(osp.join(work_root, "data", QUICK_MARKER))


def read_metric(work_root: str, test_stem: str, key: str, scale: float = 1.0) -> Tuple[Optional[float], str]:
    """(``metrics[key]`` of the run's metrics.json × ``scale``, or None when the run has no metrics.json yet; the
    file's path). ``tools/test.py`` writes ``{"config", "checkpoint", "metrics": {name: number}}``; a file of another
    form, or without ``key``, is a ValueError naming the file and the key."""
    path = osp.join(eval_dir(work_root, test_stem), METRICS_FILE)
    if not osp.isfile(path):
        return None, path
    try:
        with open(path) as f:
            content = json.load(f)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    metrics = content.get("metrics") if isinstance(content, dict) else None
    if not isinstance(metrics, dict):
        raise ValueError(f"{path}: expected an object with 'metrics': {{name: number}} (as tools/test.py writes)")
    if key not in metrics:
        raise ValueError(f"{path}: no metric {key!r} (it has: {', '.join(sorted(metrics)) or 'nothing'})")
    value = metrics[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: metric {key!r} is {value!r}, not a number")
    return round(float(value) * scale, 6), path


def read_best(work_root: str, stem: str) -> Tuple[Optional[float], Optional[int], str]:
    """The best validation top-1 of the pretraining of ``stem`` — what the official code prints — and its epoch:
    the highest ``val_top1`` of the run's ``curve.json`` (TrainingCurveHook, kept across resumes) and the epoch of
    mmengine's ``best_top1_epoch_N.pth`` (None while the run has no curve or no best checkpoint); the curve's path."""
    folder = pretrain_dir(work_root, stem)
    path = osp.join(folder, "curve.json")
    if not osp.isfile(path):
        return None, None, path
    try:
        with open(path) as f:
            points = json.load(f).get("val_top1") or []
    except (ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not the curve TrainingCurveHook writes ({err})") from None
    if not points:
        return None, None, path
    best = max(float(value) for _, value in points)
    epochs = [int(m.group(1)) for m in (re.fullmatch(r"best_top1_epoch_(\d+)\.pth", osp.basename(p))
                                        for p in glob.glob(osp.join(folder, "best_top1_epoch_*.pth"))) if m]
    return round(best, 6), (max(epochs) if epochs else None), path


# --------------------------------------------------------------------------------------------------- collect
def _cell(table: str, row: str, column: str, method: str, found: Tuple[Optional[float], str],
          paper: Optional[float], **extra) -> dict:
    ours, source = found
    return dict(table=table, row=row, column=column, method=method, ours=ours, paper=paper,
                diff=None if ours is None or paper is None else round(ours - paper, 6), source=source, **extra)


def other_methods(work_root: str, downstream: bool = False) -> List[str]:
    """Methods other than the paper's three with a Table 1 evaluation under ``work_root/test`` or reported numbers;
    ``downstream``: those with an evaluation of a downstream row instead."""
    found = set() if downstream else set(REPORTED)
    patterns = ([re.escape(r.stem("METHOD")).replace("METHOD", "([a-z0-9-]+)") + "(?:_ms)?"
                 for r in DOWNSTREAM.values()] if downstream else
                [rf"{re.escape(r.model)}_([a-z0-9-]+)_8xb128-{r.schedule}_in1k" for r in TABLE1])
    for folder in glob.glob(osp.join(work_root, "test", "*")):
        for pattern in patterns:
            m = re.fullmatch(pattern, osp.basename(folder))
            if m and m.group(1) not in METHODS:
                found.add(m.group(1))
    return sorted(found)


def _table1_cells(work_root: str, row: Table1Row, method: str, paper: Optional[float], patch: int = 16,
                  **extra) -> List[dict]:
    stem = row.stem(method, patch)
    best, epoch, curve = read_best(work_root, stem)
    return [_cell("1", row.name, "top-1", method, read_metric(work_root, stem, "top1"), paper, patch=patch, **extra),
            _cell("1", row.name, "top-1 best", method, (best, curve), paper, patch=patch, epoch=epoch, **extra)]


def collect(work_root: str) -> List[dict]:
    """Every cell of Tables 1–3 and of the extras: ``table`` ('1', '2', '3', 'extra'), ``row``, ``column``,
    ``method`` ('reference' for a reference row), ``ours`` (None: not run yet), ``paper`` (None: not in the paper),
    ``diff`` (ours − paper), ``source`` (the file read, or expected). Table 1 has per method a ``top-1`` cell (the
    final epoch: the test of the last checkpoint) and a ``top-1 best`` cell (the best validation epoch, ``epoch``),
    both with ``patch`` (14: the official code's DeiT setting, MixPro only), and cells of other methods with
    ``reported`` (their authors' number). The downstream rows have cells of the paper's methods and of every other
    method with an evaluation of one of them (:func:`other_methods`; ``paper`` None). Reference rows' cells have
    ``published`` (the model zoo's number)."""
    cells = []
    for r in TABLE1:
        for m in METHODS:
            cells += _table1_cells(work_root, r, m, paper_value("1", r.name, "top-1", m))
        if r.model in P14_MODELS:
            cells += _table1_cells(work_root, r, "mixpro", paper_value("1", r.name, "top-1", "mixpro"), patch=14)
        for m in other_methods(work_root):
            cells += _table1_cells(work_root, r, m, None, reported=REPORTED.get(m, {}).get(r.model))
    others = other_methods(work_root, downstream=True)
    for row in DOWNSTREAM.values():
        table = row.table if row.paper else "extra"
        for m in (*METHODS, *others):
            stem, paper = row.stem(m), row.paper and m in METHODS
            if row.table == "2":
                for suffix, column in (("", "mIoU"), ("_ms", "mIoU +MS")):
                    cells.append(_cell(table, row.name, column, m, read_metric(work_root, stem + suffix, "mIoU"),
                                       paper_value("2", row.name, column, m) if paper else None))
            else:
                for column, key in COCO_COLUMNS:
                    cells.append(_cell(table, row.name, column, m, read_metric(work_root, stem, key, 100.0),
                                       paper_value("3", row.name, column, m) if paper else None))
    for ref in REFERENCES.values():
        paper, published = dict(ref.paper), dict(ref.published)
        if ref.table == "2":
            found = {"mIoU": read_metric(work_root, ref.stem, "mIoU"),
                     "mIoU +MS": read_metric(work_root, ref.stem + "_ms", "mIoU")}
        else:
            found = {c: read_metric(work_root, ref.stem, key, 100.0) for c, key in COCO_COLUMNS}
        for column, value in found.items():
            cells.append(_cell(ref.table, ref.name, column, "reference", value, paper[column],
                               published=published.get(column)))
    return cells


# --------------------------------------------------------------------------------------------------- tables
def _num(v: Optional[float], digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _diff(v: Optional[float]) -> str:
    return "not run" if v is None else f"{round(v, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def _lookup(cells: Sequence[dict]) -> Dict[tuple, dict]:
    return {(c["table"], c["row"], c["column"], c["method"], c.get("patch", 16)): c for c in cells}


def _lines(label: str, parts: Sequence[Sequence[dict]], what: Sequence[Tuple[str, object]],
           pair: bool = False) -> List[str]:
    """One line per (name, cell formatter) of ``what`` for a paper row; ``parts``: one list of cells per column
    (two cells, single- and multi-scale, printed 'ss (ms)' when ``pair``)."""
    def show(cs, f):
        return f"{f(cs[0])} ({f(cs[1])})" if pair else f(cs[0])
    return [f"| {label if i == 0 else ''} | {name} | " + " | ".join(show(p, f) for p in parts) + " |"
            for i, (name, f) in enumerate(what)]


def _num_ours(c: dict) -> str:
    return _num(c["ours"])


OURS = ("ours", _num_ours)
PAPER_LINE = ("paper", lambda c: _num(c["paper"], 1))
DIFF = ("ours − paper", lambda c: _diff(c["diff"]))
PUBLISHED = ("model zoo", lambda c: _num(c.get("published")))
PUBLISHED_DIFF = ("ours − model zoo", lambda c: "" if c.get("published") is None else _diff(
    None if c["ours"] is None else c["ours"] - c["published"]))


def _best(c: dict) -> str:
    return _num(c["ours"]) + ("" if c["ours"] is None or c.get("epoch") is None else f" (epoch {c['epoch']})")


NOT_APPLICABLE = dict(na=True)  # a column a row does not have (the p14 row: MixPro only)


def _or_blank(fmt):
    return lambda c: "" if c.get("na") else fmt(c)


def _table1(at, cells: Sequence[dict]) -> List[str]:
    heads = " | ".join(display_name(m) if m == "baseline" else f"+{display_name(m)}" for m in METHODS)
    out = ["## Table 1: ImageNet-1k top-1 (%)", "",
           "Each row: ours at the final epoch (the test of the last checkpoint), ours at the best validation epoch "
           "(what the official code prints), the paper's, and both differences. `p14`: MixPro in the official code's "
           "patch-14 DeiT setting (docs/methods.md, \"Paper tables\").", "",
           f"| model | | {heads} |", "|---|---|---|---|---|"]
    lines = [("top-1", ("ours, final epoch", _num_ours)), ("top-1 best", ("ours, best epoch", _best)),
             ("top-1", PAPER_LINE), ("top-1", ("final − paper", DIFF[1])), ("top-1 best", ("best − paper", DIFF[1]))]
    for r in TABLE1:
        variants = [(r.name, 16, METHODS)]
        if r.model in P14_MODELS and any(at[("1", r.name, c, "mixpro", 14)]["ours"] is not None
                                         for c in ("top-1", "top-1 best")):
            variants.append((f"{r.name} p14", 14, ("mixpro",)))
        for label, patch, methods in variants:
            for i, (column, (name, fmt)) in enumerate(lines):
                parts = [[at[("1", r.name, column, m, patch)] if m in methods else NOT_APPLICABLE] for m in METHODS]
                out += _lines(label if i == 0 else "", parts, [(name, _or_blank(fmt))])
    others = [c for c in cells if c["table"] == "1" and c["method"] not in METHODS and c["column"] == "top-1"
              and (c["ours"] is not None or c.get("reported") is not None)]
    if others:
        out += ["", "Other methods on Table 1 rows (not in the MixPro paper): ours, and top-1 as reported by the "
                    "method's authors (their README), not by the MixPro paper.", "",
                "| model | method | ours, final epoch | ours, best epoch | reported by the authors | ours − reported |",
                "|---|---|---|---|---|---|"]
        for c in others:
            rep = c.get("reported")
            diff = None if c["ours"] is None or rep is None else c["ours"] - rep
            best = at[("1", c["row"], "top-1 best", c["method"], 16)]
            out.append(f"| {c['row']} | {display_name(c['method'])} | {_num(c['ours'])} | {_best(best)} | "
                       f"{_num(rep, 1)} | {_diff(diff)} |")
    return out


def _other_downstream(cells: Sequence[dict]) -> List[str]:
    """Ours on the downstream rows for the methods outside the paper's columns, one line per row and method with a
    result: the segmentation rows' mIoU (+MS), Table 3's six columns."""
    found: Dict[Tuple[str, str, str], Dict[str, dict]] = {}  # (table, row, method) → column → cell
    for c in cells:
        if c["table"] != "1" and c["method"] not in (*METHODS, "reference"):
            found.setdefault((c["table"], c["row"], c["method"]), {})[c["column"]] = c
    lines = [(key, cs) for key, cs in found.items() if any(c["ours"] is not None for c in cs.values())]
    if not lines:
        return []
    coco = [c for c, _ in COCO_COLUMNS]
    out = ["", "## Other methods on the downstream rows (not in the MixPro paper): ours (%)", "",
           "| table | row | method | mIoU (+MS) | " + " | ".join(coco) + " |", "|---|---|---|---|" + "---|" * len(coco)]
    for (table, row, method), cs in lines:
        seg = f"{_num(cs['mIoU']['ours'])} ({_num(cs['mIoU +MS']['ours'])})" if "mIoU" in cs else ""
        det = [_num(cs[c]["ours"]) if c in cs else "" for c in coco]
        out.append(f"| {'Table ' + table if table != 'extra' else 'extra'} | {row} | {display_name(method)} | {seg} | "
                   + " | ".join(det) + " |")
    return out


def markdown(cells: Sequence[dict], work_root: str, quick: bool = False) -> str:
    """Tables 1–3 in the paper's layout, each paper row as lines ours / paper / ours − paper (Table 1: final and
    best epoch; reference rows also the model zoo's number); "—" and "not run" mark runs without metrics yet; the
    ADE20K extra (not the paper's table); then the count of runs with and without metrics per table. ``quick``: the
    work root is a --quick one, said at the top (its numbers are a CPU check, not comparable with the paper)."""
    at = _lookup(cells)
    heads = " | ".join(display_name(m) if m == "baseline" else f"+{display_name(m)}" for m in METHODS)
    out = ["# MixPro paper tables: ours beside the paper's", ""]
    if quick:
        out += ["**QUICK WORK ROOT** (`plan --quick`: tiny generated data, 64-px inputs, a few iterations): these "
                "numbers check the pipeline and are not comparable with the paper's.", ""]
    out += [f"Written by `tools/paper_tables.py collect {work_root}`: each run's own `{METRICS_FILE}` (tools/test.py) "
            f"under `test/<config>/`, and for Table 1's best epoch the pretraining's `curve.json`. \"—\" / "
            f"\"not run\": no metrics yet.", ""]
    out += _table1(at, cells)
    out += ["", "## Table 2: Pascal Context (60 classes), DeiT-S backbones, mIoU (%) single-scale (multi-scale + flip)",
            "", f"| head | | {heads} |", "|---|---|---|---|---|"]
    for row in (r for r in DOWNSTREAM.values() if r.table == "2" and r.paper):
        out += _lines(row.name, [[at[("2", row.name, "mIoU", m, 16)], at[("2", row.name, "mIoU +MS", m, 16)]]
                                 for m in METHODS], [OURS, PAPER_LINE, DIFF], pair=True)
    for ref in (r for r in REFERENCES.values() if r.table == "2"):
        out += ["", f"Reference row (mmseg's own config `{ref.stem}`; published: {ref.source}):", "",
                "| row | | mIoU (+MS) |", "|---|---|---|"]
        out += _lines(ref.name, [[at[("2", ref.name, "mIoU", "reference", 16)],
                                  at[("2", ref.name, "mIoU +MS", "reference", 16)]]],
                      [OURS, PAPER_LINE, PUBLISHED, DIFF, PUBLISHED_DIFF], pair=True)
    columns = [c for c, _ in COCO_COLUMNS]
    out += ["", "## Table 3: COCO Mask R-CNN 1x (%)", "",
            "| backbone | | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for ref in (r for r in REFERENCES.values() if r.table == "3"):
        out += _lines(f"{ref.name} (reference, `{ref.stem}`)",
                      [[at[("3", ref.name, c, "reference", 16)]] for c in columns],
                      [OURS, PAPER_LINE, PUBLISHED, DIFF, PUBLISHED_DIFF])
    for row in (r for r in DOWNSTREAM.values() if r.table == "3"):
        for m in METHODS:
            label = row.name if m == "baseline" else f"{display_name(m)}-{row.name}"
            out += _lines(label, [[at[("3", row.name, c, m, 16)]] for c in columns], [OURS, PAPER_LINE, DIFF])
    sources = "; ".join(sorted({r.source for r in REFERENCES.values()}))
    out += ["", f"Reference rows: the model zoo's numbers are {sources}. A reference row far from its published "
                f"number means the set-up (data, GPUs, software) differs.", "",
            "## Extra, not the paper's table: ADE20K (150 classes), DeiT-S Segmenter, mIoU (%) (multi-scale + flip)",
            "", f"| head | {heads} |", "|---|---|---|---|"]
    for row in (r for r in DOWNSTREAM.values() if not r.paper):
        out.append(f"| {row.name} | " + " | ".join(
            f"{_num(at[('extra', row.name, 'mIoU', m, 16)]['ours'])} "
            f"({_num(at[('extra', row.name, 'mIoU +MS', m, 16)]['ours'])})" for m in METHODS) + " |")
    out += _other_downstream(cells)
    runs = {}  # metrics.json → (table, has metrics) of the paper's cells (its methods, patch 16, the reference rows)
    for c in cells:
        if c["column"] != "top-1 best" and c["method"] in (*METHODS, "reference") and c.get("patch", 16) == 16:
            runs[c["source"]] = (c["table"], c["ours"] is not None)
    missing = {t: sum(1 for table, done in runs.values() if table == t and not done) for t in ("1", "2", "3", "extra")}
    out += ["", f"Runs with metrics: {sum(done for _, done in runs.values())} of {len(runs)}; not run yet: "
                + ", ".join(f"{n} in {'Table ' + t if t != 'extra' else 'the extras'}" for t, n in missing.items())
                + " (`--json` lists every cell with the file it reads)."]
    return "\n".join(out) + "\n"

"""The MixPro paper's Tables 1–3 at full scale (``tools/paper_tables.py``): the rows, the paper's numbers, and the
collector that reads each run's own ``metrics.json`` (written by ``tools/test.py`` into its work dir) from a work
root laid out by ``plan`` (:mod:`.paper_plan`) and prints the tables in the paper's layout.

- :data:`TABLE1`: each Table 1 row's classification config stem (``{model}_{method}_8xb128-{schedule}_in1k``);
- :data:`DOWNSTREAM`: the Table 2 heads (DeiT-S, ADE20K) and the Table 3 detector (PVT-S, COCO), with their
  fine-tune configs, conversion targets and test configs;
- :data:`PAPER`: every number of the paper's three tables, in one place;
- :func:`collect`: ours, the paper's and ours − paper per cell (None where the run has no metrics yet);
  :func:`markdown`: the three tables.
"""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from classification.engine.launch import METRICS_FILE  # tools/test.py: <work-dir>/metrics.json, {"metrics": {...}, ...}

from .stats import display_name

METHODS = ("baseline", "transmix", "mixpro")


@dataclass(frozen=True)
class Table1Row:
    """A Table 1 row: ``name`` as printed, ``model`` and ``schedule`` give the config stem of each method."""

    name: str
    model: str
    schedule: str

    def stem(self, method: str) -> str:
        return f"{self.model}_{method}_8xb128-{self.schedule}_in1k"


TABLE1 = tuple(Table1Row(*r) for r in (
    ("DeiT-T", "deit-t", "300e"), ("DeiT-S", "deit-s", "300e"), ("DeiT-B", "deit-b", "300e"),
    ("PVT-T", "pvt-t", "300e"), ("PVT-S", "pvt-s", "300e"), ("PVT-M", "pvt-m", "300e"), ("PVT-L", "pvt-l", "300e"),
    ("CaiT-XXS", "cait-xxs36", "400e"), ("XCiT-T", "xcit-t24", "400e"), ("XCiT-S", "xcit-s12", "400e"),
    ("XCiT-M", "xcit-m24", "400e"), ("XCiT-L", "xcit-l24", "400e"), ("CA-Swin-T", "ca-swin-t", "300e"),
    ("CA-Swin-S", "ca-swin-s", "300e")))
TABLE1_BY_MODEL = {r.model: r for r in TABLE1}


@dataclass(frozen=True)
class DownstreamRow:
    """A Table 2 head or the Table 3 detector: the Table 1 ``backbone`` row it fine-tunes, the converter ``target``,
    the fine-tune config stem (``{method}`` in it) and the suffixes of its test configs ('' and '_ms')."""

    key: str
    table: str
    name: str
    backbone: str
    target: str
    finetune: str
    tests: Tuple[str, ...]
    folder: str

    def stem(self, method: str) -> str:
        return self.finetune.format(method=method)


DOWNSTREAM = {
    "ade20k-linear": DownstreamRow("ade20k-linear", "2", "Linear", "deit-s", "mmseg-vit",
                                   "segmenter-linear_deit-s_{method}_8xb1-160k_ade20k-512x512", ("", "_ms"),
                                   "segmentation"),
    "ade20k-mask": DownstreamRow("ade20k-mask", "2", "Segmenter mask head", "deit-s", "mmseg-vit",
                                 "segmenter-mask_deit-s_{method}_8xb1-160k_ade20k-512x512", ("", "_ms"),
                                 "segmentation"),
    "coco-mask-rcnn": DownstreamRow("coco-mask-rcnn", "3", "PVT-S", "pvt-s", "mmdet-pvt",
                                    "mask-rcnn_pvt-s_{method}_fpn_8xb2-1x_coco", ("",), "detection"),
}
ROW_GROUPS = {"table1": tuple(r.model for r in TABLE1), "table2": ("ade20k-linear", "ade20k-mask"),
              "table3": ("coco-mask-rcnn",)}
DEFAULT_ROWS = ("table2", "table3")

# Table 3 columns: (column of PAPER, metrics.json key of mmdet's CocoMetric, in [0, 1]; the paper prints percent)
COCO_COLUMNS = (("box AP", "coco/bbox_mAP"), ("box AP50", "coco/bbox_mAP_50"), ("box AP75", "coco/bbox_mAP_75"),
                ("mask AP", "coco/segm_mAP"), ("mask AP50", "coco/segm_mAP_50"), ("mask AP75", "coco/segm_mAP_75"))

# The MixPro paper (ICLR 2023), Tables 1–3: (table, row, column) -> (baseline, TransMix, MixPro). Table 1: ImageNet
# top-1; Table 2: ADE20K mIoU single-scale ('mIoU') and multi-scale + flip ('mIoU +MS'); Table 3: COCO Mask R-CNN 1x.
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


def paper_value(table: str, row: str, column: str, method: str) -> float:
    return PAPER[(table, row, column)][METHODS.index(method)]


# --------------------------------------------------------------------------------------------------- collect
def eval_dir(work_root: str, test_stem: str) -> str:
    """Where ``plan`` puts the evaluation of the config ``test_stem`` (and so its metrics.json)."""
    return osp.join(work_root, "test", test_stem)


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


def _cell(table: str, row: str, column: str, method: str, found: Tuple[Optional[float], str]) -> dict:
    ours, source = found
    paper = paper_value(table, row, column, method)
    return dict(table=table, row=row, column=column, method=method, ours=ours, paper=paper,
                diff=None if ours is None else round(ours - paper, 6), source=source)


def collect(work_root: str) -> List[dict]:
    """Every cell of Tables 1–3: ``table``, ``row``, ``column``, ``method``, ``ours`` (None: not run yet),
    ``paper``, ``diff`` (ours − paper), ``source`` (the metrics.json read, or expected)."""
    cells = []
    for r in TABLE1:
        for m in METHODS:
            cells.append(_cell("1", r.name, "top-1", m, read_metric(work_root, r.stem(m), "top1")))
    for row in DOWNSTREAM.values():
        for m in METHODS:
            stem = row.stem(m)
            if row.table == "2":
                cells.append(_cell("2", row.name, "mIoU", m, read_metric(work_root, stem, "mIoU")))
                cells.append(_cell("2", row.name, "mIoU +MS", m, read_metric(work_root, stem + "_ms", "mIoU")))
            else:
                for column, key in COCO_COLUMNS:
                    cells.append(_cell("3", row.name, column, m, read_metric(work_root, stem, key, 100.0)))
    return cells


# --------------------------------------------------------------------------------------------------- tables
def _num(v: Optional[float], digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _diff(v: Optional[float]) -> str:
    return "not run" if v is None else f"{round(v, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def _lookup(cells: Sequence[dict]) -> Dict[Tuple[str, str, str, str], dict]:
    return {(c["table"], c["row"], c["column"], c["method"]): c for c in cells}


def _three_lines(label: str, parts: Sequence[Sequence[dict]], pair: bool = False) -> List[str]:
    """The 'ours', 'paper' and 'ours − paper' lines of one paper row; ``parts``: one list of cells per column
    (two cells, single- and multi-scale, printed 'ss (ms)' when ``pair``)."""
    def show(cs, f):
        return f"{f(cs[0])} ({f(cs[1])})" if pair else f(cs[0])
    lines = []
    for what, f in (("ours", lambda c: _num(c["ours"])), ("paper", lambda c: _num(c["paper"], 1)),
                    ("ours − paper", lambda c: _diff(c["diff"]))):
        lines.append(f"| {label if what == 'ours' else ''} | {what} | " + " | ".join(show(p, f) for p in parts) + " |")
    return lines


def markdown(cells: Sequence[dict], work_root: str) -> str:
    """Tables 1–3 in the paper's layout, each paper row as three lines: ours, the paper's, ours − paper; "—" and
    "not run" mark the runs without metrics yet; then the count of runs with and without metrics per table."""
    at = _lookup(cells)
    heads = " | ".join(display_name(m) if m == "baseline" else f"+{display_name(m)}" for m in METHODS)
    out = ["# MixPro paper tables: ours beside the paper's", "",
           f"Written by `tools/paper_tables.py collect {work_root}`: each run's own `{METRICS_FILE}` (tools/test.py) "
           f"under `test/<config>/`. Every paper row has three lines: ours, the paper's, ours − paper; "
           f"\"—\" / \"not run\": no metrics yet.", "",
           "## Table 1: ImageNet-1k top-1 (%)", "", f"| model | | {heads} |", "|---|---|---|---|---|"]
    for r in TABLE1:
        out += _three_lines(r.name, [[at[("1", r.name, "top-1", m)]] for m in METHODS])
    out += ["", "## Table 2: ADE20K, DeiT-S backbones, mIoU (%) single-scale (multi-scale + flip)", "",
            f"| head | | {heads} |", "|---|---|---|---|---|"]
    for row in (r for r in DOWNSTREAM.values() if r.table == "2"):
        out += _three_lines(row.name, [[at[("2", row.name, "mIoU", m)], at[("2", row.name, "mIoU +MS", m)]]
                                       for m in METHODS], pair=True)
    columns = [c for c, _ in COCO_COLUMNS]
    out += ["", "## Table 3: COCO Mask R-CNN 1x, PVT-S backbones (%)", "",
            "| backbone | | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for row in (r for r in DOWNSTREAM.values() if r.table == "3"):
        for m in METHODS:
            label = row.name if m == "baseline" else f"{display_name(m)}-{row.name}"
            out += _three_lines(label, [[at[("3", row.name, c, m)]] for c in columns])
    runs = {}  # metrics.json → (table, has metrics)
    for c in cells:
        runs[c["source"]] = (c["table"], c["ours"] is not None)
    missing = {t: sum(1 for table, done in runs.values() if table == t and not done) for t in ("1", "2", "3")}
    out += ["", f"Runs with metrics: {sum(done for _, done in runs.values())} of {len(runs)}; not run yet: "
                + ", ".join(f"{n} in Table {t}" for t, n in missing.items())
                + " (`--json` lists every cell with the metrics.json it reads)."]
    return "\n".join(out) + "\n"

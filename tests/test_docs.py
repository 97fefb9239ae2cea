"""The README and docs/ say only what is true: every Python block runs, every repository path they name exists, and
the method × backbone matrix is the one the configs generate.

A Python block that is a fragment on purpose (a signature, an excerpt of a config) is preceded by the line
``<!-- fragment -->``; every other ```` ```python ```` block is executed as written, in a fresh interpreter at the
repository root.
"""
import glob
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest

from classification.foundation.host import ROOT
from classification.devtools import support_matrix

DOCS = ["README.md"] + sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, "docs", "*.md")))
FRAGMENT = "<!-- fragment -->"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
# a repository path in backticks or as a link target; spans with pattern characters ({a,b}, *, …, <x>, CAPS) name no single file
PATH = re.compile(r"(?:`|\]\()((?:configs|tools|classification|mixpro_core|segmentation|detection|docs|tests)/[^`)\s]*)"
                  r"(?=[`)])")
PATTERN_SPAN = re.compile(r"[{}*…<>]|\b[A-Z]{3,}\b")
# paths the docs name that are not ours to ship: files of other projects' repositories cited as sources
# (docs/methods.md), and the file the reader creates (docs/get-started.md, "Train on your own images")
FOREIGN = {"configs/deit", "configs/swin", "configs/deit_s_transmix.yaml", "configs/deit_b_transmix.yaml",
           "configs/deeplabv3plus/metafile.yaml", "configs/classification/my_images.py"}


def _read(doc):
    with open(osp.join(ROOT, doc), encoding="utf-8") as f:
        return f.read()


def python_blocks():
    """(doc, line, code) of every Python block that is not marked as a fragment."""
    blocks = []
    for doc in DOCS:
        text = _read(doc)
        for m in BLOCK.finditer(text):
            if m.group("before").strip() != FRAGMENT:
                blocks.append((doc, text[:m.start("code")].count("\n") + 1, m.group("code")))
    return blocks


def test_block_parser_sees_blocks_and_fragments():
    text = f"intro\n```python\nx = 1\n```\n{FRAGMENT}\n```python\ndef f(...)\n```\n"
    found = [(m.group("before"), m.group("code")) for m in BLOCK.finditer(text)]
    assert found == [("intro", "x = 1"), (FRAGMENT, "def f(...)")]


@pytest.mark.slow
@pytest.mark.parametrize("doc,line,code", python_blocks(), ids=lambda v: v if isinstance(v, (str, int)) else "")
def test_python_block_runs(doc, line, code):
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, f"{doc}:{line}: the Python block fails:\n{done.stderr[-3000:]}"


def test_named_paths_exist():
    missing = []
    for doc in DOCS:
        for m in PATH.finditer(_read(doc)):
            path = m.group(1).split("#")[0].rstrip(".,:;")
            if path in FOREIGN or PATTERN_SPAN.search(path):
                continue
            if not osp.exists(osp.join(ROOT, path)):
                missing.append(f"{doc}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_path_pattern_catches_a_missing_config():
    text = "see `configs/classification/deit-s_mixpro_8xb128-300e_in1k.py` and [x](configs/nope/missing.py)"
    found = [m.group(1) for m in PATH.finditer(text)]
    assert found == ["configs/classification/deit-s_mixpro_8xb128-300e_in1k.py", "configs/nope/missing.py"]
    assert not osp.exists(osp.join(ROOT, found[1]))


def test_support_matrix_is_current():
    readme = _read("README.md")
    assert support_matrix.render(readme, support_matrix.matrix(osp.join(ROOT, "configs"))) == readme, \
        "README.md's method × backbone matrix is stale: run tools/support_matrix.py"


def test_support_matrix_lists_every_config_of_a_method():
    """Against the folder listing: every classification config named model_method_schedule_data appears in its
    method's row exactly once."""
    configs = osp.join(ROOT, "configs")
    table = support_matrix.matrix(configs)
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    for path in glob.glob(osp.join(configs, "classification", "*.py")):
        name = osp.basename(path)
        parts = name[:-3].split("_")
        if len(parts) == 4:
            assert rows[parts[1]].count(f"configs/classification/{name})") == 1, name


# what the quick-start test appends to each command so that it runs in seconds (the commands stay as written)
QUICK_SHRINK = {
    "tools/train.py configs/classification": ["--cfg-options", "train_dataloader.dataset.limit=256",
                                              "val_dataloader.dataset.limit=100"],
    "tools/test.py": ["--cfg-options", "test_dataloader.dataset.limit=100"],
    "tools/make_downstream_data.py": ["--num-train", "8", "--num-val", "4"],
    "tools/train.py configs/segmentation": ["--cfg-options", "train_cfg.max_iters=2", "train_dataloader.batch_size=2"],
}


def quick_start_commands():
    """The shell commands of README.md's "Quick start" block, one argv per command (``&&`` splits a line)."""
    body = _read("README.md").split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", body, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        commands += [shlex.split(part) for part in line.split("&&") if part.strip()]
    return commands


@pytest.mark.slow
def test_quick_start_runs_on_the_embedded_data(tmp_path):
    """Every quick-start command, in order, in a scratch folder that sees the repository's configs and tools (so
    nothing is written into the checkout), each shortened by :data:`QUICK_SHRINK`; each must succeed and leave what
    the next one reads."""
    for name in ("configs", "tools"):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    commands = quick_start_commands()
    assert [c[1] for c in commands] == ["tools/train.py", "tools/test.py", "tools/convert_checkpoint.py",
                                        "tools/make_downstream_data.py", "tools/train.py", "tools/paper_tables.py"]
    for argv in commands:
        assert argv[0] == ".venv/bin/python", argv
        line = " ".join(argv[1:3])
        extra = next((v for k, v in QUICK_SHRINK.items() if line.startswith(k) or argv[1] == k), [])
        done = subprocess.run([sys.executable, *argv[1:], *extra], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert (tmp_path / "work_dirs" / "quickstart" / "epoch_2.pth").is_file()
    assert (tmp_path / "work_dirs" / "demo" / "tiny-vit_mixpro_mmseg-vit.pth").is_file()
    assert (tmp_path / "work_dirs" / "paper" / "plan" / "slurm.sh").is_file()


def test_readme_results_come_from_the_committed_reports():
    """Each number of README's small-scale results table is the committed report's for that backbone: FMNIST columns
    from docs/results-vit-methods.md's method table, the downstream columns from docs/results-downstream.md."""
    readme = _read("README.md").split("\n## What it found at small scale\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in readme.splitlines()
            if line.startswith("| ") and "±" in line]
    reports = {"fmnist": _read("docs/results-vit-methods.md"), "downstream": _read("docs/results-downstream.md")}
    names = {"random init": ("", "random init"), "baseline (Mixup + CutMix)": ("baseline", "baseline"),
             "TransMix": ("transmix", "TransMix"), "MixPro": ("mixpro", "MixPro"), "TL-Align": ("tlalign", "tlalign"),
             "SMMix": ("smmix", "smmix"), "TokenMix (no teacher)": ("tokenmix-area", "tokenmix-area"),
             "MergeMix": ("mergemix", "mergemix")}
    assert [r[0] for r in rows] == list(names)
    for name, top1, drop, miou, box in rows:
        fmnist, down = names[name]
        if fmnist:
            row = next(l for l in reports["fmnist"].splitlines() if l.startswith(f"| {fmnist} |"))
            assert [c.strip() for c in row.strip("|").split("|")][2:4] == [top1, drop], name
        seg = next(l for l in reports["downstream"].splitlines() if l.startswith(f"| {down} |") and "Fashion" not in l
                   and l.count("|") == 8)
        assert [c.strip() for c in seg.strip("|").split("|")][4] == miou, name
        det = next(l for l in reports["downstream"].splitlines()
                   if l.startswith(f"| {down} |") and l.count("|") == 9)
        assert [c.strip() for c in det.strip("|").split("|")][1] == box, name

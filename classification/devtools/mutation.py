"""Mutation testing (``make mutate``, ``tools/mutate.py``): mutmut on a list of modules, each against its own tests.

Every module runs in a scratch copy ``work_dirs/mutate/<module>/`` (links to the checkout and a pyproject.toml whose
``[tool.mutmut]`` is the project's plus ``only_mutate`` = the module and the test selection = its paired tests from
:data:`PAIRED_TESTS`), so mutmut's ``mutants/`` never touches the working tree and a mutant runs seconds of tests, not
the suite; ``path.py::fn,Class.method`` mutates only those functions. The time budget is shared out over the modules;
a run stopped by it keeps its verdicts, the next continues (mutmut keeps verdicts while a function's code is unchanged)
and re-checks earlier survivors against the current tests. Score = killed / (killed + survived + timeout); ``not
checked`` = left by the budget. How to read survivors and mark an equivalent mutant: docs/development.md.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from classification.foundation.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
WORK = Path("work_dirs") / "mutate"
PACKAGES = ("mixpro_core", "classification", "segmentation", "detection")  # copied whole into mutants/
DEFAULT_BUDGET_S = 20 * 60

# module (repository path) → the tests that cover it; a mutant runs only those of them that call the mutated function
PAIRED_TESTS: Dict[str, Tuple[str, ...]] = {
    "mixpro_core/mixing.py": ("tests/mixpro_core/test_mixing_values.py", "tests/mixpro_core/test_mixing.py",
                              "tests/mixpro_core/test_partner_direction.py"),
    "mixpro_core/labels.py": ("tests/mixpro_core/test_labels_values.py", "tests/mixpro_core/test_labels.py",
                              "tests/mixpro_core/test_policy_batch_kinds.py"),
    "mixpro_core/schedule.py": ("tests/mixpro_core/test_schedule_values.py",
                                "tests/mixpro_core/test_schedule_frequencies.py", "tests/mixpro_core/test_mixing.py"),
    "mixpro_core/registry.py": ("tests/mixpro_core/test_schedule_values.py", "tests/mixpro_core/test_mixing.py"),
    "mixpro_core/attention.py": ("tests/mixpro_core/test_attention.py", "tests/mixpro_core/test_smmix.py",
                                 "tests/classification/models/test_cls_attention_values.py"),
    "mixpro_core/rmix.py": ("tests/mixpro_core/test_rmix.py",),
    "mixpro_core/rlmix.py": ("tests/mixpro_core/test_rlmix.py",),
    "mixpro_core/tokenmixup.py": ("tests/mixpro_core/test_tokenmixup.py",),
    "classification/foundation/checkpoints.py": ("tests/classification/foundation/test_checkpoints.py",
                                             "tests/classification/foundation/test_strict_loader_values.py"),
    "classification/engine/launch.py": ("tests/classification/engine/test_schedule_values.py",),
    "classification/models/pvt.py": ("tests/classification/models/test_pvt.py",),
    "classification/foundation/atomic.py": ("tests/classification/transfer/test_composite_restart.py",),
    "classification/transfer/convert.py": ("tests/classification/transfer/test_convert_checkpoint.py",),
    "classification/transfer/convert_models.py": ("tests/classification/transfer/test_convert_checkpoint.py",
                                                  "tests/classification/foundation/test_checkpoint_sources.py"),
    "classification/experiments/robustness/suites.py": ("tests/classification/experiments/robustness/test_robustness.py",
                                                        "tests/classification/experiments/robustness/test_robustness_values.py"),
    "classification/experiments/reproduction/stats.py": ("tests/classification/experiments/reproduction/test_statistics.py", "tests/classification/experiments/reproduction/test_statistics_values.py"),
    "classification/experiments/reproduction/paper_plan.py": ("tests/classification/experiments/reproduction/test_paper_tables.py",),
    "classification/experiments/reproduction/paper_tables.py": ("tests/classification/experiments/reproduction/test_paper_tables_values.py",
                                                                "tests/classification/experiments/reproduction/test_paper_tables.py"),
}
# what `make mutate` checks without MODULES: issue #34's weak spots, the functions that hold them
DEFAULT_MODULES = ("mixpro_core/attention.py", "mixpro_core/schedule.py",
                   "classification/foundation/checkpoints.py::compare_state_dicts,load_state_dict_strict,checkpoint_state",
                   "classification/engine/launch.py::shorten_schedule,_schedule_length",
                   "classification/experiments/robustness/suites.py::NormalizedModel.forward,split_normalize,"
                   "drop_patches,shuffle_patches,num_patches_to_drop,patch_grid")

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 2: "not checked", None: "not checked"}


@dataclass
class ModuleResult:
    """Verdicts of one module's mutants: ``status`` name → mutant names, and the seconds this run spent on it."""
    module: str  # the target as given: path, or path::functions
    by_status: Dict[str, List[str]] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_by_budget: bool = False

    def count(self, status: str) -> int:
        return len(self.by_status.get(status, ()))

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_status.values())

    @property
    def score(self) -> Optional[float]:
        """killed / (killed + survived + timeout); None while nothing was decided."""
        decided = self.count("killed") + self.count("survived") + self.count("timeout")
        return self.count("killed") / decided if decided else None


@dataclass(frozen=True)
class Target:
    """A paired module and, optionally, the functions / methods (``Class.method``) to mutate in it (all if empty)."""
    module: str
    functions: Tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.module + (f"::{','.join(self.functions)}" if self.functions else "")

    def globs(self) -> List[str]:
        """mutmut name patterns of the selected functions' mutants (empty: the whole module)."""
        dotted = self.module.removesuffix(".py").replace("/", ".")
        out = []
        for name in self.functions:
            cls, _, fn = name.rpartition(".")
            out.append(f"{dotted}.xǁ{cls}ǁ{fn}__mutmut_*" if cls else f"{dotted}.x_{fn}__mutmut_*")
        return out


def resolve_modules(entries: Sequence[str]) -> List[Target]:
    """Targets from ``entries``: a paired module path (``path.py``, or ``path.py::fn,Class.method`` for some of its
    functions), or a folder prefix (``mixpro_core/``) naming all paired modules below it. Unknown entries are a
    :class:`UserError`."""
    targets: List[Target] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        path, _, functions = entry.partition("::")
        prefix = path.rstrip("/") + "/"
        found = [path] if path in PAIRED_TESTS else [m for m in PAIRED_TESTS if m.startswith(prefix)]
        if not found or (functions and found != [path]):
            raise UserError(f"no tests are paired with {path!r}: add it to PAIRED_TESTS in "
                            f"classification/devtools/mutation.py (module path → its tests)")
        names = tuple(f for f in functions.split(",") if f)
        missing = sorted(set(names) - _defined_functions(ROOT / path)) if names else []
        if missing:
            raise UserError(f"{path} defines no function or method {missing} (name functions as fn or Class.method)")
        targets += [t for t in (Target(m, names) for m in found) if t not in targets]
    return targets


def _defined_functions(path: Path) -> set:
    """Top-level function names and ``Class.method`` names of the Python file ``path``."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{f.name}" for f in node.body if isinstance(f, (ast.FunctionDef,
                                                                                    ast.AsyncFunctionDef))}
    return names


def _toml_value(value) -> str:
    """A TOML literal for a str / bool / number / list of those (JSON's string escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def module_settings(module: str, base: Dict) -> Dict:
    """The ``[tool.mutmut]`` table of one module's scratch copy: the project's settings (``base``) with the packages
    as sources, only ``module`` mutated, its paired tests selected and the other top-level entries copied along."""
    extra = sorted(p.name for p in ROOT.iterdir() if p.name not in PACKAGES and p.name not in (
        ".git", ".venv", "work_dirs", "mutants", "pyproject.toml", "tests") and not p.name.startswith("."))
    return {**base, "source_paths": list(PACKAGES), "only_mutate": [module],
            "pytest_add_cli_args_test_selection": [t for t in PAIRED_TESTS[module] if (ROOT / t).exists()],
            "also_copy": list(base.get("also_copy", [])) + extra}


def prepare_scratch(module: str, fresh: bool) -> Path:
    """``work_dirs/mutate/<module>/``: links to the checkout's top-level entries and the module's pyproject.toml."""
    import tomllib

    scratch = ROOT / WORK / module.replace("/", "__").removesuffix(".py")
    if fresh and scratch.exists():
        shutil.rmtree(scratch)
    # mutants/ exists before mutmut starts: Python caches a PYTHONPATH entry that is missing at start-up as unusable
    (scratch / "mutants").mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in (".git", ".venv", "work_dirs", "mutants", "pyproject.toml"):
            continue
        link = scratch / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)
    text = (ROOT / "pyproject.toml").read_text()
    base = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    text = re.sub(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n?)*", "", text, flags=re.M).rstrip() + "\n"
    table = "\n".join(f"{k} = {_toml_value(v)}" for k, v in module_settings(module, base).items())
    (scratch / "pyproject.toml").write_text(f"{text}\n[tool.mutmut]\n{table}\n")
    return scratch


def read_verdicts(scratch: Path, module: str) -> Dict[str, List[str]]:
    """Status name → mutant names, from mutmut's ``mutants/<module>.meta`` (empty before the first run)."""
    meta = scratch / "mutants" / (module + ".meta")
    if not meta.exists():
        return {}
    by_status: Dict[str, List[str]] = {}
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        by_status.setdefault(STATUS.get(code, "suspicious"), []).append(name)
    return by_status


def _mutmut(scratch: Path, args: Sequence[str], timeout: float, log) -> bool:
    """``mutmut <args>`` in ``scratch`` (one worker, one thread; subprocesses import the mutated copy too). Stopped
    with Ctrl-C at ``timeout`` seconds (mutmut saves every verdict as it goes); True when it was stopped."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(scratch / "mutants"),
               MPLBACKEND="Agg")
    exe = Path(sys.executable).parent / "mutmut"
    proc = subprocess.Popen([str(exe), *args], cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        proc.wait(timeout=max(timeout, 1))
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return True


def read_target(scratch: Path, target: Target) -> Dict[str, List[str]]:
    """:func:`read_verdicts` restricted to ``target``'s functions."""
    verdicts = read_verdicts(scratch, target.module)
    globs = target.globs()
    if not globs:
        return verdicts
    picked = {k: [n for n in v if any(fnmatch.fnmatchcase(n, g) for g in globs)] for k, v in verdicts.items()}
    return {k: v for k, v in picked.items() if v}


def mutate_module(target: Target, budget_s: float, fresh: bool = False) -> ModuleResult:
    """Run mutmut on ``target`` for at most ``budget_s`` seconds: earlier survivors are re-checked first (the tests
    may have changed since), then the mutants not checked yet. The log is ``work_dirs/mutate/<module>/mutmut.log``."""
    scratch = prepare_scratch(target.module, fresh)
    start = time.monotonic()
    stopped = False
    with open(scratch / "mutmut.log", "a") as log:
        if target.functions:  # named mutants always run again: after the first run, name the open ones only
            verdicts = read_target(scratch, target)
            names = verdicts.get("survived", []) + verdicts.get("not checked", []) if verdicts else target.globs()
            if names:
                stopped = _mutmut(scratch, ["run", "--max-children", "1", *names], budget_s, log)
        else:
            survivors = read_verdicts(scratch, target.module).get("survived", [])
            if survivors:
                stopped = _mutmut(scratch, ["run", "--max-children", "1", *survivors], budget_s, log)
            left = budget_s - (time.monotonic() - start)
            if not stopped and left > 0:
                stopped = _mutmut(scratch, ["run", "--max-children", "1"], left, log)
    return ModuleResult(str(target), read_target(scratch, target), time.monotonic() - start, stopped)


def show_mutant(module: str, name: str) -> str:
    """The diff of one mutant (``mutmut show``) from the module's scratch copy."""
    scratch = ROOT / WORK / module.partition("::")[0].replace("/", "__").removesuffix(".py")
    exe = Path(sys.executable).parent / "mutmut"
    return subprocess.run([str(exe), "show", name], cwd=scratch, capture_output=True, text=True).stdout


def format_result(result: ModuleResult, diffs: bool = False) -> str:
    """One block per module: counts, score, the survivors (with their diffs when ``diffs``)."""
    score = "n/a" if result.score is None else f"{100 * result.score:.1f}%"
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("killed", "survived", "timeout", "no tests", "not checked",
                                                            "suspicious", "skipped") if result.count(s))
    lines = [f"{result.module}: score {score} ({result.count('killed')}/{result.total} killed; {counts}) "
             f"in {result.seconds:.0f} s" + (" — stopped by the budget" if result.stopped_by_budget else "")]
    for name in sorted(result.by_status.get("survived", [])):
        lines.append(f"  survived: {name}")
        if diffs:
            lines += ["    " + line for line in show_mutant(result.module, name).splitlines()[1:]]
    return "\n".join(lines)


def run(modules: Sequence[Target], budget_s: float, fresh: bool = False, diffs: bool = False) -> List[ModuleResult]:
    """Each target in turn with an equal share of what is left of ``budget_s``; prints each module's block as it ends
    and a total line."""
    if budget_s <= 0:
        raise UserError(f"BUDGET must be a positive number of seconds, got {budget_s}")
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        raise UserError(f"mutmut is not installed in {sys.prefix}: pip install mutmut==3.8.1 (the dev extra)")
    os.chdir(ROOT)
    results = []
    deadline = time.monotonic() + budget_s
    for i, module in enumerate(modules):
        share = (deadline - time.monotonic()) / (len(modules) - i)
        result = mutate_module(module, share, fresh)
        print(format_result(result, diffs), flush=True)
        results.append(result)
    killed = sum(r.count("killed") for r in results)
    decided = sum(r.count("killed") + r.count("survived") + r.count("timeout") for r in results)
    print(f"total: {killed}/{decided} decided mutants killed"
          + (f" ({100 * killed / decided:.1f}%)" if decided else "")
          + f", {sum(r.count('not checked') for r in results)} not checked")
    return results


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths (path.py or path.py::fn,Class.method) or folder "
                                                   "prefixes (default: DEFAULT_MODULES)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all modules together")
    parser.add_argument("--fresh", action="store_true", help="discard earlier verdicts")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    args = parser.parse_args(argv)
    run(resolve_modules(args.modules or DEFAULT_MODULES), args.budget, args.fresh, args.diffs)

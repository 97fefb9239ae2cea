"""The layering of the packages, checked from the source: every import of ours — at the top of a module or inside a
function, ``import x``, ``from x import y``, relative, or ``importlib.import_module("x")`` with a literal name — must
go to the importer's own unit or to a unit of a lower layer. Units of one layer do not import each other.

Layers, lowest first (:data:`LAYERS`): ``mixpro_core`` < ``classification.foundation`` < ``classification.data``,
``classification.models``, ``classification.evaluation`` < ``classification.engine`` < ``classification.transfer``,
``classification.register_all`` < ``classification.benchmarks``, ``classification.experiments`` < ``segmentation``,
``detection``, ``classification.devtools``. ``classification`` itself (its ``__init__``) imports nothing. A module
in no unit is an error too, so a new package gets a place here before it gets imports.

``tools/check_layers.py`` prints every violation (``file:line: a imports b (layer …)``) and exits 1 when there is one;
``make test`` runs it before the tests.
"""
from __future__ import annotations

import ast
import os
import os.path as osp
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

ROOTS = ("mixpro_core", "classification", "segmentation", "detection")
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("mixpro_core",),
    ("classification.foundation",),
    ("classification.data", "classification.models", "classification.evaluation"),
    ("classification.engine",),
    ("classification.transfer", "classification.register_all"),
    ("classification.benchmarks", "classification.experiments"),
    ("segmentation", "detection", "classification.devtools"),
)
EMPTY = ("classification",)  # package roots whose __init__ imports nothing of ours


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({self.reason})"


def unit_of(module: str) -> Optional[str]:
    """The unit (an entry of :data:`LAYERS`) ``module`` belongs to: the longest one that is it or a parent of it."""
    found = [u for layer in LAYERS for u in layer if module == u or module.startswith(u + ".")]
    return max(found, key=len) if found else None


def layer_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def module_name(path: str, repo: str) -> str:
    """``classification/engine/hooks.py`` → ``classification.engine.hooks`` (a package's ``__init__`` → the package)."""
    parts = osp.relpath(path, repo)[:-3].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: str, module: str) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every import statement and literal ``import_module`` call in the file."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # ``from pkg import mod`` imports pkg.mod when it is a module
                yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def check_file(path: str, repo: str) -> List[Violation]:
    module = module_name(path, repo)
    rel = osp.relpath(path, repo)
    own = unit_of(module)
    if own is None and module not in EMPTY:
        return [Violation(rel, 1, module, "-", "in no unit of classification.devtools.layering.LAYERS")]
    out = []
    for line, target in imports_of(path, module):
        if target.split(".")[0] not in ROOTS:
            continue
        unit = unit_of(target)
        if own is None:
            out.append(Violation(rel, line, module, target, f"{module} must import nothing of ours"))
        elif unit is None or unit == own:
            continue  # the importer's own unit, or a package root (``from classification import x`` names a unit)
        elif layer_of(unit) >= layer_of(own):
            kind = "same layer" if layer_of(unit) == layer_of(own) else "a higher layer"
            out.append(Violation(rel, line, module, target, f"{unit} is in {kind} than {own}"))
    return out


def python_files(repo: str, roots: Sequence[str] = ROOTS) -> List[str]:
    files = []
    for root in roots:
        for folder, _, names in os.walk(osp.join(repo, root)):
            files += [osp.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    return sorted(files)


def check(repo: str) -> List[Violation]:
    return [v for path in python_files(repo) for v in check_file(path, repo)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    from classification.foundation.host import ROOT
    parser = argparse.ArgumentParser(description="Check that no module imports above its layer.")
    parser.add_argument("--repo", default=ROOT, help="repository root (default: this one)")
    args = parser.parse_args(argv)
    violations = check(args.repo)
    for v in violations:
        print(v)
    print(f"check_layers: {len(python_files(args.repo))} modules, {len(violations)} violation(s)")
    return 1 if violations else 0

"""The layering check: the repository has no violation, and each kind of import above a layer — top-level, lazy,
relative, ``import_module`` — is found in a planted tree; imports within a unit or downward are not."""
import os
import os.path as osp
import subprocess
import sys

from classification.devtools import layering
from classification.foundation.host import ROOT


def write(root, rel, text=""):
    path = osp.join(root, rel)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def planted(tmp_path, files):
    """A repository of empty packages plus ``files`` (path → source); its violations as (file, line, target)."""
    for pkg in ("mixpro_core", "classification", "classification/foundation", "classification/models",
                "classification/data", "classification/engine", "segmentation"):
        write(tmp_path, f"{pkg}/__init__.py")
    for rel, text in files.items():
        write(tmp_path, rel, text)
    return sorted((v.path, v.line, v.imported) for v in layering.check(str(tmp_path)))


def test_the_repository_imports_nothing_above_its_layer():
    proc = subprocess.run([sys.executable, osp.join(ROOT, "tools", "check_layers.py")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("0 violation(s)")


def test_upward_imports_of_every_form_are_found(tmp_path):
    found = planted(tmp_path, {
        "classification/foundation/errors.py": "import classification.engine.hooks\n",
        "classification/models/net.py": "def f():\n    from classification.engine import runner\n",
        "classification/data/sets.py": "from ..engine.launch import prepare_config\n",
        "mixpro_core/mix.py": "import importlib\nM = importlib.import_module('classification.models.net')\n",
        "classification/engine/hooks.py": "from segmentation import backbones\n",
    })
    assert found == [("classification/data/sets.py", 1, "classification.engine.launch.prepare_config"),
                     ("classification/engine/hooks.py", 1, "segmentation.backbones"),
                     ("classification/foundation/errors.py", 1, "classification.engine.hooks"),
                     ("classification/models/net.py", 2, "classification.engine.runner"),
                     ("mixpro_core/mix.py", 2, "classification.models.net")]


def test_siblings_of_one_layer_do_not_import_each_other_but_own_unit_and_lower_layers_are_fine(tmp_path):
    found = planted(tmp_path, {
        "classification/data/sets.py": "from classification.models.net import Net\n",
        "classification/models/net.py": ("from . import blocks\nfrom classification.foundation.errors import E\n"
                                        "import mixpro_core\nimport torch\n"),
        "classification/models/blocks.py": "",
        "classification/engine/run.py": "from classification.data import sets\nfrom classification.models import net\n",
    })
    assert found == [("classification/data/sets.py", 1, "classification.models.net.Net")]


def test_a_module_outside_every_unit_and_an_importing_package_root_are_violations(tmp_path):
    found = planted(tmp_path, {"classification/newpkg/mod.py": "",
                               "classification/__init__.py": "from . import engine\n"})
    assert found == [("classification/__init__.py", 1, "classification.engine"),
                     ("classification/newpkg/mod.py", 1, "-")]

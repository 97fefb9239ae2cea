"""Importing a package loads only what it uses: each import runs in a fresh interpreter, and the test lists which of
our modules and which heavy libraries got loaded. Registration happens in ``classification.register_all`` (what the
configs' ``custom_imports`` name), not as a side effect of importing ``classification`` or a sub-package."""
import json
import subprocess
import sys

import pytest

OURS = ("classification", "segmentation", "detection", "mixpro_core")
HEAVY = ("torch", "timm", "mmengine", "mmcv", "mmseg", "mmdet")
FOUNDATION_FOR_MSMLP = {"classification", "classification.foundation", "classification.foundation.atomic",
                        "classification.foundation.atomic_backend",
                        "classification.foundation.checkpoint_sources", "classification.foundation.checkpoints",
                        "classification.foundation.errors", "classification.models", "classification.models.msmlp",
                        "classification.models.weight_init", "classification.models.pretrained"}


def loaded_by(module: str):
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            f"print(json.dumps([sorted(k for k in sys.modules if k.split('.')[0] in {OURS!r}), "
            f"sorted(k for k in {HEAVY!r} if k in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    return set(ours), set(heavy)


@pytest.mark.parametrize("module, ours, heavy", [
    ("classification", {"classification"}, set()),
    ("classification.foundation.errors",
     {"classification", "classification.foundation", "classification.foundation.errors"}, set()),
    # the generated downstream sets: numpy, PIL, pycocotools, the raw Fashion-MNIST reader and the atomic writer — no
    # torch, no mmengine
    ("classification.transfer.downstream_data.composite",
     {"classification", "classification.transfer", "classification.transfer.downstream_data",
      "classification.transfer.downstream_data.composite", "classification.data", "classification.data.idx",
      "classification.foundation", "classification.foundation.atomic"}, set()),
    # mmseg's own models package imports mmdet when it is installed (its MaskFormer heads), hence mmdet here
    ("segmentation", FOUNDATION_FOR_MSMLP | {"segmentation", "segmentation.backbones"},
     {"torch", "timm", "mmengine", "mmcv", "mmseg", "mmdet"}),
    ("detection", FOUNDATION_FOR_MSMLP | {"detection", "detection.backbones"},
     {"torch", "timm", "mmengine", "mmcv", "mmdet"}),
], ids=["classification", "foundation.errors", "downstream_data", "segmentation", "detection"])
def test_an_import_loads_exactly_what_the_module_uses(module, ours, heavy):
    assert loaded_by(module) == (ours, heavy)


def test_register_all_registers_every_config_type_and_loads_no_task_above_the_engine():
    ours, heavy = loaded_by("classification.register_all")
    assert not {m for m in ours if m.startswith(("classification.transfer", "classification.experiments",
                                                 "classification.benchmarks", "segmentation", "detection"))}
    assert {"mmseg", "mmdet"}.isdisjoint(heavy)
    code = ("import classification.register_all; from mmengine.registry import DATASETS, HOOKS, MODELS, "
            "OPTIM_WRAPPERS, METRICS, RUNNERS, DATA_SAMPLERS; "
            "print(all(r.get(n) is not None for r, n in [(MODELS, 'MixClassifier'), (MODELS, 'deit_small'), "
            "(MODELS, 'pvt_small'), (DATASETS, 'FashionMNIST'), (DATASETS, 'ImageNetZip'), (HOOKS, 'EMAHook'), "
            "(OPTIM_WRAPPERS, 'GuardedOptimWrapper'), (METRICS, 'TopKAccuracy'), (RUNNERS, 'MixProRunner'), "
            "(DATA_SAMPLERS, 'RepeatAugSampler')]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "True", proc.stdout + proc.stderr[-2000:]

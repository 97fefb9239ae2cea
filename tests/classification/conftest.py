"""The small deterministic Fashion-MNIST training run shared by the interrupt-and-resume tests (kill -9, preemption),
and the ``tool`` fixture of the one-line-error tests.

Tests that use the ``fmnist_run`` fixture mark themselves ``@pytest.mark.needs_data(FMNIST)``."""
import os
import os.path as osp
import sys
import warnings
from types import SimpleNamespace

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FMNIST_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
# 512 training images, batch 64, 3 epochs (8 iterations each), deterministic, no validation until the end
SMALL = ["train_dataloader.dataset.limit=512", "val_dataloader.dataset.limit=100", "train_dataloader.batch_size=64",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False", "train_cfg.val_interval=10",
         "train_cfg.max_epochs=3", "randomness.deterministic=True", "default_hooks.checkpoint.max_keep_ckpts=5"]


def train_cmd(work: str, *options: str) -> list:
    """``tools/train.py`` on the small run; ``options`` are further ``--cfg-options`` (later keys win)."""
    return [sys.executable, "tools/train.py", FMNIST_CONFIG, "--work-dir", work, "--cfg-options", *SMALL, *options]


def dist_train_cmd(work: str, nproc: int, *options: str) -> list:
    """``tools/dist_train.sh`` (torchrun, gloo on the CPU) with ``nproc`` ranks on the small run."""
    return ["bash", "tools/dist_train.sh", FMNIST_CONFIG, str(nproc), "--work-dir", work, "--cfg-options", *SMALL,
            *options]


def env(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", **extra)


@pytest.fixture
def fmnist_run():
    """``train_cmd``, ``dist_train_cmd``, ``env`` and ``ROOT`` (the working directory for the commands)."""
    return SimpleNamespace(ROOT=ROOT, train_cmd=train_cmd, dist_train_cmd=dist_train_cmd, env=env)


@pytest.fixture
def tool(monkeypatch, capsys):
    """``tool(main, argv) -> the error line``: runs ``main(argv)`` as ``tools/*.py`` do (``run_tool``) and checks the
    exit: status 2, exactly one ``error:`` line on stderr. The process-wide settings the tools make (weights-only
    loader, warning filters) are undone after the test."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from classification.foundation.errors import USER_ERROR_EXIT, run_tool

    monkeypatch.setattr(CheckpointLoader, "_schemes", dict(CheckpointLoader._schemes))

    def call(main, argv):
        with pytest.raises(SystemExit) as info:
            run_tool(lambda: main(argv))
        err = capsys.readouterr().err
        assert info.value.code == USER_ERROR_EXIT, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        return lines[0]
    with warnings.catch_warnings():
        yield call

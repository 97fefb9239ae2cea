"""Importing the packages changes no global behaviour of mmengine: the weights-only checkpoint loader is installed
only by ``classification.foundation.checkpoints.install_safe_checkpoint_loading()`` (which the tools call), and from then on
an mmengine Runner checkpoint (HistoryBuffers, numpy scalars) loads through ``CheckpointLoader`` while a pickle with
any other object is refused (a one-line ``UserError`` naming the file). Each check runs in a fresh interpreter, so
nothing installed by other tests counts."""
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, tmp_path) -> list:
    """Run ``code`` in a fresh interpreter; the lines it printed as ``RESULT <text>`` (mmengine logs to stdout)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]


@pytest.mark.parametrize("packages", [["classification.register_all"],
                                      ["classification.register_all", "segmentation", "detection"]],
                         ids=["classification", "all-packages"])
def test_importing_the_packages_leaves_mmengine_local_loader_alone(packages, tmp_path):
    out = run_python(f"""
        import importlib
        from mmengine.fileio.backends import backends
        from mmengine.runner.checkpoint import CheckpointLoader
        before = dict(CheckpointLoader._schemes)
        for name in {packages!r}:
            importlib.import_module(name)
        assert dict(CheckpointLoader._schemes) == before, "an import replaced a checkpoint loader"
        assert CheckpointLoader._get_checkpoint_loader("work_dirs/x/epoch_1.pth") is before[""]
        print("RESULT", "atomic_local" in backends)
    """, tmp_path)
    assert out == ["True"]  # the one thing an import adds: a new file backend name, nothing replaced


def test_install_makes_runner_checkpoints_load_weights_only(tmp_path):
    out = run_python("""
        import pickle
        import numpy as np
        import torch
        from mmengine.logging import HistoryBuffer
        from mmengine.runner.checkpoint import CheckpointLoader
        from classification.foundation.checkpoints import install_safe_checkpoint_loading, load_from_local
        from classification.foundation.errors import UserError

        buffer = HistoryBuffer()
        buffer.update(1.5)
        torch.save({"state_dict": {"w": torch.ones(2)}, "message_hub": {"loss": buffer},
                    "meta": {"seed": np.int64(3)}}, "runner.pth")

        class Payload:
            pass
        torch.save({"state_dict": {}, "evil": Payload()}, "other.pth")

        try:  # mmengine's own local loader (torch.load, weights_only by default in torch >= 2.6)
            CheckpointLoader.load_checkpoint("runner.pth", map_location="cpu")
            print("RESULT default-loaded")
        except pickle.UnpicklingError:
            print("RESULT default-refused")
        install_safe_checkpoint_loading()
        install_safe_checkpoint_loading()  # idempotent
        assert CheckpointLoader._get_checkpoint_loader("runner.pth") is load_from_local
        ckpt = CheckpointLoader.load_checkpoint("runner.pth", map_location="cpu")
        assert torch.equal(ckpt["state_dict"]["w"], torch.ones(2)) and ckpt["meta"]["seed"] == 3
        assert ckpt["message_hub"]["loss"].current() == 1.5
        try:
            CheckpointLoader.load_checkpoint("other.pth", map_location="cpu")
            print("RESULT payload-loaded")
        except UserError as err:  # one line naming the file; the refusal of the unpickler is its cause
            assert "other.pth is not a readable torch checkpoint" in str(err), err
            assert isinstance(err.__cause__, pickle.UnpicklingError), err.__cause__
            print("RESULT payload-refused")
    """, tmp_path)
    assert out == ["default-refused", "payload-refused"]

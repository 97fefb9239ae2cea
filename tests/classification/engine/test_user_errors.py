"""A user's mistakes are one ``error:`` line on stderr and exit status 2, without a traceback and before any work:
unknown config file or keys, wrong option values, a missing dataset, bad arguments, a file that is not a checkpoint, a
checkpoint of another architecture (tools/train.py, test.py, visualize.py, robustness.py; the shell launchers).
Internal errors keep their traceback."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.engine import launch
from classification.foundation.errors import USER_ERROR_EXIT, run_tool
from classification.experiments import visualize

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
P4_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit-p4_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.needs_data(FMNIST)


@pytest.fixture
def checkpoints(tmp_path):
    """A checkpoint of the patch-8 tiny-ViT config, one of the patch-4 config, and a text file."""
    paths = dict(p8=tmp_path / "p8.pth", p4=tmp_path / "p4.pth", text=tmp_path / "notes.txt")
    for key, config in (("p8", CONFIG), ("p4", P4_CONFIG)):
        torch.save({"state_dict": MODELS.build(Config.fromfile(config).model).state_dict(), "meta": {}}, paths[key])
    paths["text"].write_text("this is not a checkpoint\n")
    return {k: str(v) for k, v in paths.items()}


def test_unknown_config_file(tool, tmp_path):
    line = tool(launch.main, [CONFIG.replace("fmnist", "fmnsit"), "--work-dir", str(tmp_path / "w")])
    assert line == f"error: config not found: {CONFIG.replace('fmnist', 'fmnsit')}"
    line = tool(launch.run_test, [CONFIG.replace("mixpro", "mixrpo"), str(tmp_path / "x.pth")])
    assert "config not found" in line


@pytest.mark.parametrize("option,expected", [
    ("trian_cfg.max_epochs=1", "the config has no key 'trian_cfg'; did you mean 'train_cfg'?"),
    ("train_cfg.max_epoch=1", "EpochBasedTrainLoop, which takes no option 'max_epoch'; did you mean 'max_epochs'?"),
    ("optim_wrapper.optimizer.lr=-1", "Invalid learning rate: -1"),
    ("train_cfg.max_epochs=0", "train_cfg.max_epochs=0: must be an integer of at least 1"),
])
@needs_fmnist
def test_wrong_cfg_options_stop_before_the_run(tool, tmp_path, option, expected):
    work = tmp_path / "w"
    line = tool(launch.main, [CONFIG, "--work-dir", str(work), "--cfg-options", option])
    assert expected in line
    assert not work.exists(), "the run started"


def test_missing_dataset_root(tool, tmp_path):
    line = tool(launch.main, [CONFIG, "--work-dir", str(tmp_path / "w"), "--cfg-options",
                              "train_dataloader.dataset.root=/nowhere/fashion-mnist"])
    assert line.startswith("error: train_dataloader.dataset.root: dataset folder /nowhere/fashion-mnist does not "
                           "exist (Fashion-MNIST: `make setup` as root installs")
    assert not (tmp_path / "w").exists()


@needs_fmnist
def test_bad_script_arguments(tool, tmp_path, checkpoints, capsys):
    with pytest.raises(SystemExit) as info:  # argparse: usage and one error line, status 2
        launch.parse_args([CONFIG, "--epochs", "0"])
    assert info.value.code == 2 and capsys.readouterr().err.strip().endswith("--epochs must be at least 1, got 0")
    assert "--num must be at least 2" in tool(visualize.main, [CONFIG, checkpoints["p8"], "--num", "1"])
    assert "checkpoint to resume from not found" in tool(launch.main, [CONFIG, "--resume", str(tmp_path / "no.pth")])
    line = tool(launch.main, [CONFIG, "--work-dir", str(tmp_path / "w"), "--partial-load", "backbone.head"])
    assert "without load_from" in line


@needs_fmnist
def test_a_text_file_as_checkpoint(tool, tmp_path, checkpoints):
    text = checkpoints["text"]
    expected = f"error: {text} is not a readable torch checkpoint ("
    assert tool(launch.run_test, [CONFIG, text, "--work-dir", str(tmp_path / "t")]).startswith(expected)
    assert not (tmp_path / "t" / "metrics.json").exists()
    assert tool(visualize.main, [CONFIG, text, "--out", str(tmp_path / "g.png")]).startswith(expected)
    assert not (tmp_path / "g.png").exists()
    work = tmp_path / "w"
    line = tool(launch.main, [CONFIG, "--work-dir", str(work), "--resume", text, "--cfg-options",
                              "train_dataloader.dataset.limit=256"])
    assert line.startswith(expected) and not [f for f in os.listdir(work) if f.endswith(".pth")]


@needs_fmnist
def test_a_checkpoint_of_another_architecture(tool, tmp_path, checkpoints):
    shapes = "(checkpoint (64, 1, 8, 8), model (64, 1, 4, 4))"
    line = tool(launch.run_test, [P4_CONFIG, checkpoints["p8"], "--work-dir", str(tmp_path / "t")])
    assert f"does not fit MixClassifier: 2 of another shape: backbone.patch_embed.proj.weight {shapes}" in line
    assert "backbone.pos_embed (checkpoint (1, 17, 64), model (1, 65, 64))" in line
    assert not (tmp_path / "t" / "metrics.json").exists(), "evaluated a checkpoint that does not fit"
    work = tmp_path / "w"
    line = tool(launch.main, [P4_CONFIG, "--work-dir", str(work), "--cfg-options", f"load_from={checkpoints['p8']}",
                              "train_dataloader.dataset.limit=256", "train_dataloader.batch_size=64"])
    assert f"backbone.patch_embed.proj.weight {shapes}" in line
    assert not [f for f in os.listdir(work) if f.endswith(".pth")], "trained from a checkpoint that does not fit"


def test_internal_errors_keep_their_traceback():
    def broken():
        raise RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        run_tool(broken)


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run(list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_one_error_line(proc, expected):
    assert proc.returncode == USER_ERROR_EXIT, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr


@needs_fmnist
def test_the_tools_print_one_line(tmp_path, checkpoints):
    """The same through the real command lines: tools/*.py call run_tool, nothing else prints a traceback."""
    assert_one_error_line(run_script(sys.executable, "tools/train.py", CONFIG, "--work-dir", str(tmp_path / "w"),
                                     "--cfg-options", "trian_cfg.max_epochs=1"), "did you mean 'train_cfg'?")
    assert_one_error_line(run_script(sys.executable, "tools/test.py", P4_CONFIG, checkpoints["p8"], "--work-dir",
                                     str(tmp_path / "t")),
                          "backbone.patch_embed.proj.weight (checkpoint (64, 1, 8, 8), model (64, 1, 4, 4))")
    assert_one_error_line(run_script(sys.executable, "tools/visualize.py", CONFIG, checkpoints["text"]),
                          "is not a readable torch checkpoint")
    assert_one_error_line(run_script(sys.executable, "tools/robustness.py", P4_CONFIG, checkpoints["p8"],
                                     "--out-dir", str(tmp_path / "r"), "--suite", "occlusion", "--quiet"),
                          "patch_embed.proj.weight (checkpoint (64, 1, 8, 8), model (64, 1, 4, 4))")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("script,usage", [
    ("dist_train.sh", "usage: tools/dist_train.sh CONFIG GPUS"),
    ("dist_test.sh", "usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS"),
    ("slurm_train.sh", "usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG GPUS"),
])
def test_launchers_without_their_arguments_print_usage(script, usage):
    proc = run_script("bash", f"tools/{script}", "only-one-argument")
    assert proc.returncode == USER_ERROR_EXIT and proc.stdout == ""
    assert proc.stderr.strip().startswith(usage) and "unbound variable" not in proc.stderr

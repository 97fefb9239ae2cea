"""End-to-end: tools/train.py resumes with iteration and optimiser state and starts with a short, readable console;
tools/dist_train.sh runs 2 gloo ranks; tools/test.py evaluates a checkpoint and writes metrics.json. Tiny
Fashion-MNIST subsets, a few iterations each."""
import json
import os
import os.path as osp
import random
import subprocess
import sys

import pytest

from classification.foundation.checkpoints import load_checkpoint_file

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
pytestmark = [pytest.mark.slow, pytest.mark.needs_data(FMNIST)]

SMALL = ["train_dataloader.dataset.limit=256", "val_dataloader.dataset.limit=100", "train_dataloader.batch_size=64",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False", "train_cfg.val_interval=1",
         "default_hooks.logger.interval=1"]


def run(args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def adamw_steps(path):
    state = load_checkpoint_file(path)["optimizer"]["state"]
    return {int(s["step"]) for s in state.values()}


def test_resume_restores_iteration_and_optimizer_state(tmp_path):
    work = str(tmp_path / "run")
    train = [sys.executable, "tools/train.py", CONFIG, "--work-dir", work, "--cfg-options", *SMALL]
    run(train + ["train_cfg.max_epochs=1"])
    first = load_checkpoint_file(osp.join(work, "epoch_1.pth"))
    assert first["meta"]["iter"] == 4 and adamw_steps(osp.join(work, "epoch_1.pth")) == {4}
    log = run(train + ["train_cfg.max_epochs=2", "--resume"])
    assert "resumed epoch: 1, iter: 4" in log
    second = osp.join(work, "epoch_2.pth")
    assert load_checkpoint_file(second)["meta"]["iter"] == 8
    assert adamw_steps(second) == {8}, "optimiser state was not restored"
    assert osp.isfile(osp.join(work, "curve.png"))
    out = run([sys.executable, "tools/test.py", CONFIG, second, "--work-dir", str(tmp_path / "test"),
               "--cfg-options", *SMALL, "test_dataloader.dataset.limit=100", "test_dataloader.num_workers=0",
               "test_dataloader.persistent_workers=False"])
    written = json.loads((tmp_path / "test" / "metrics.json").read_text())  # where the README says
    assert written["checkpoint"] == second and set(written["metrics"]) == {"top1", "top5"}
    top1 = written["metrics"]["top1"]
    assert f"top1: {top1}  top5: {written['metrics']['top5']}" in out and "np.float" not in out


def test_dist_train_two_gloo_processes(tmp_path):
    work = str(tmp_path / "dist")
    env = dict(PORT=str(random.randint(20000, 40000)))
    proc = subprocess.run(["bash", "tools/dist_train.sh", CONFIG, "2", "--work-dir", work, "--cfg-options", *SMALL,
                           "train_cfg.max_epochs=1"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **env))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "× 2 process(es)" in log  # the start-up summary
    ckpt = load_checkpoint_file(osp.join(work, "epoch_1.pth"))
    # 256 samples over 2 ranks × 64 per rank → 2 iterations per epoch
    assert ckpt["meta"]["iter"] == 2


def test_rlmix_policy_is_checkpointed_and_resumed(tmp_path):
    """RL-Mix end to end: the PPO policy trains with the classifier (2 updates of 128 images per epoch here), is in
    the checkpoint, continues after --resume, and the checkpoint still converts for downstream use."""
    config = osp.join(ROOT, "configs/classification/tiny-vit_rlmix_1xb128-20e_fmnist.py")
    work = str(tmp_path / "run")
    train = [sys.executable, "tools/train.py", config, "--work-dir", work, "--cfg-options", *SMALL,
             "model.mix.0.n_steps=128", "model.mix.0.batch_size=64"]
    log = run(train + ["train_cfg.max_epochs=1"])
    assert "rlmix_reward" in log and "rlmix_q" in log
    first = load_checkpoint_file(osp.join(work, "epoch_1.pth"))["state_dict"]["method.mixer.mixers.0._extra_state"]
    assert first["updates"] == 2
    run(train + ["train_cfg.max_epochs=2", "--resume"])
    second = load_checkpoint_file(osp.join(work, "epoch_2.pth"))["state_dict"]["method.mixer.mixers.0._extra_state"]
    assert second["updates"] == 4, "the policy did not continue from the checkpoint"
    moved = [k for k in first["policy"] if not (first["policy"][k] == second["policy"][k]).all()]
    assert moved, "the policy did not learn in the second epoch"
    run([sys.executable, "tools/convert_checkpoint.py", osp.join(work, "epoch_2.pth"), str(tmp_path / "vit.pth"),
         "--to", "mmseg-vit"])


def test_startup_console_is_short_and_says_what_runs(tmp_path):
    """The README's first command (shrunk to 256 images): under 40 console lines before the first training line,
    naming config, work dir, model size, data, device, threads / workers and the starting point; the details left
    out of the console are in the log file and the full config in the work dir."""
    work = tmp_path / "run"
    out = run([sys.executable, "tools/train.py", CONFIG, "--work-dir", str(work), "--epochs", "1", "--cfg-options",
               "train_dataloader.dataset.limit=256", "val_dataloader.dataset.limit=100",
               "default_hooks.logger.interval=1"])
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "Epoch(train)" in line)
    startup = "\n".join(lines[:first])
    assert first < 40, startup
    for expected in (f"config: {CONFIG}", f"work dir: {work} (full config: {work}/tiny-vit_mixpro_1xb128-20e_fmnist.py",
                     "model: MixClassifier (VisionTransformer), 0.14M parameters", "train data: 256 samples",
                     "schedule: 1 epochs × 2 iterations, AdamW lr 0.004", "val data: 100 samples",
                     "device: cpu × 1 process(es), 1 intra-op threads, 0 loader workers",
                     "start: iteration 0, the model's own initialisation"):
        assert expected in startup, expected
    for hidden in ("System environment", "paramwise_options", "Hooks will be executed", "FileClient", "Warning"):
        assert hidden not in startup, hidden
    assert (work / "tiny-vit_mixpro_1xb128-20e_fmnist.py").is_file()
    log = "".join(p.read_text() for p in work.glob("*/*.log"))
    assert "System environment" in log and "paramwise_options" in log and "Config:" in log

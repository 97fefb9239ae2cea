"""End-to-end: tools/train.py resumes with iteration and optimiser state; tools/dist_train.sh runs 2 gloo ranks;
tools/test.py evaluates a checkpoint. Tiny Fashion-MNIST subsets, a few iterations each."""
import os
import os.path as osp
import random
import subprocess
import sys

import pytest

from classification.engine import load_checkpoint_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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
    assert "top1" in out


def test_dist_train_two_gloo_processes(tmp_path):
    work = str(tmp_path / "dist")
    env = dict(PORT=str(random.randint(20000, 40000)))
    proc = subprocess.run(["bash", "tools/dist_train.sh", CONFIG, "2", "--work-dir", work, "--cfg-options", *SMALL,
                           "train_cfg.max_epochs=1"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **env))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Distributed training: True" in log
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
    first = load_checkpoint_file(osp.join(work, "epoch_1.pth"))["state_dict"]["mixer.mixers.0._extra_state"]
    assert first["updates"] == 2
    run(train + ["train_cfg.max_epochs=2", "--resume"])
    second = load_checkpoint_file(osp.join(work, "epoch_2.pth"))["state_dict"]["mixer.mixers.0._extra_state"]
    assert second["updates"] == 4, "the policy did not continue from the checkpoint"
    moved = [k for k in first["policy"] if not (first["policy"][k] == second["policy"][k]).all()]
    assert moved, "the policy did not learn in the second epoch"
    run([sys.executable, "tools/convert_checkpoint.py", osp.join(work, "epoch_2.pth"), str(tmp_path / "vit.pth"),
         "--to", "mmseg-vit"])

"""A work dir is one run's: a resumed copy of a work dir reads, writes and deletes only its own files (the
``last_checkpoint`` pointer and the best-checkpoint path in the message hub name the original's files), and a lock
(``run.lock``) stops a second live run into the same folder with one line, is released on any exit and is taken over
from a dead run with a warning."""
import hashlib
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from mmengine.runner.checkpoint import CheckpointLoader

from classification.engine import lifecycle
from classification.foundation.checkpoints import latest_checkpoint
from classification.foundation.errors import USER_ERROR_EXIT, run_tool
from classification.engine.launch import main as train_main

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
SMALL = ["train_dataloader.dataset.limit=256", "val_dataloader.dataset.limit=200", "train_dataloader.batch_size=64",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False", "train_cfg.val_interval=1",
         "randomness.deterministic=True"]


def env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")


def train(work, *options):
    proc = subprocess.run([sys.executable, "tools/train.py", CONFIG, "--work-dir", str(work), *options,
                           "--cfg-options", *SMALL], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def digest(folder):
    """{relative path: sha256} of every file under ``folder``."""
    found = {}
    for top, _, files in os.walk(folder):
        for name in files:
            path = osp.join(top, name)
            with open(path, "rb") as f:
                found[osp.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_a_resumed_copy_of_a_work_dir_leaves_the_original_byte_identical(tmp_path):
    original, copy = tmp_path / "a", tmp_path / "b"
    train(original, "--cfg-options", "train_cfg.max_epochs=1")
    assert (original / "best_top1_epoch_1.pth").is_file()
    assert open(original / "last_checkpoint").read().strip() == str(original / "epoch_1.pth")  # absolute
    before = digest(original)
    shutil.copytree(original, copy)
    log = train(copy, "--resume", "auto", "--epochs", "3")
    # the precondition of the data loss: a better epoch came, so a previous best checkpoint was removed
    assert not (copy / "best_top1_epoch_1.pth").exists()
    assert any((copy / f"best_top1_epoch_{e}.pth").exists() for e in (2, 3)), log[-3000:]
    assert f"The previous best checkpoint {copy / 'best_top1_epoch_1.pth'} is removed" in log
    assert f"resume: {copy / 'epoch_1.pth'}" in log, "resumed from the original's checkpoint"
    assert digest(original) == before, "a file of the original work dir was changed or deleted"
    assert open(copy / "last_checkpoint").read().strip() == str(copy / "epoch_3.pth")


def test_a_pointer_into_another_folder_is_read_as_this_folders_file(tmp_path):
    original, copy = tmp_path / "a", tmp_path / "b"
    for folder in (original, copy):
        folder.mkdir()
        (folder / "epoch_1.pth").write_bytes(b"x")
    (copy / "last_checkpoint").write_text(str(original / "epoch_1.pth"))
    assert latest_checkpoint(str(copy)) == str(copy / "epoch_1.pth")
    (copy / "last_checkpoint").write_text("epoch_1.pth")  # a relative name is read in the work dir
    assert latest_checkpoint(str(copy)) == str(copy / "epoch_1.pth")
    (copy / "epoch_1.pth").unlink()
    (copy / "epoch_2.pth").write_bytes(b"x")
    (copy / "last_checkpoint").write_text(str(original / "epoch_1.pth"))  # this folder has no such file
    assert latest_checkpoint(str(copy)) == str(copy / "epoch_2.pth")


def _hold_lock(work):
    """A process that holds ``work``'s lock until killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from classification.engine.lifecycle import "
                               "acquire_work_dir; acquire_work_dir(sys.argv[1]); print('held', flush=True); "
                               "time.sleep(120)", str(work)], cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.needs_data(FMNIST)
def test_a_second_live_run_into_the_same_work_dir_stops_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(CheckpointLoader, "_schemes", dict(CheckpointLoader._schemes))
    work = tmp_path / "w"
    holder = _hold_lock(work)
    try:
        record = json.loads((work / "run.lock").read_text())
        with pytest.raises(SystemExit) as info:
            run_tool(lambda: train_main([CONFIG, "--work-dir", str(work), "--cfg-options", *SMALL]))
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == USER_ERROR_EXIT and len(err) == 1, err
        assert err[0].startswith(f"error: the work dir {work} is in use by another run: pid {holder.pid} on "
                                 f"{socket.gethostname()}, started {record['started']}"), err
        assert os.listdir(work) == ["run.lock"], "the refused run wrote into the work dir"
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_released_on_an_exception_and_a_ctrl_c(tmp_path, monkeypatch):
    class FailingRunner:
        rank, work_dir, error = 0, str(tmp_path), None

        @classmethod
        def from_cfg(cls, cfg):
            assert osp.isfile(osp.join(cfg["work_dir"], "run.lock")), "the lock is taken before the Runner"
            return cls()

        def train(self):
            raise FailingRunner.error

    monkeypatch.setattr(lifecycle, "MixProRunner", FailingRunner)
    monkeypatch.setattr(lifecycle, "release_dataloader_workers", lambda runner: None)
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        FailingRunner.error = error
        with pytest.raises(type(error)):
            lifecycle.run(dict(work_dir=str(tmp_path)))
        assert not (tmp_path / "run.lock").exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(lifecycle, "print_log", lambda msg, **kw: warnings.append(msg))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run.lock").write_text(json.dumps(dict(pid=dead.pid, host=socket.gethostname(), started="earlier")))
    with lifecycle.work_dir_lock(str(tmp_path)) as lock:
        assert lock.replaced["pid"] == dead.pid
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    assert len(warnings) == 1 and f"stale lock of a run that no longer runs (killed?): pid {dead.pid}" in warnings[0]
    assert not (tmp_path / "run.lock").exists()
    # a holder ended by SIGTERM: the kernel drops its flock, its record stays and is taken over
    holder = _hold_lock(tmp_path)
    holder.send_signal(signal.SIGTERM)
    holder.wait()
    with lifecycle.work_dir_lock(str(tmp_path)) as lock:
        assert lock.replaced["pid"] == holder.pid
    # a record of another host is never taken over: its process cannot be checked from here
    (tmp_path / "run.lock").write_text(json.dumps(dict(pid=1, host="elsewhere", started="earlier")))
    with pytest.raises(lifecycle.WorkDirInUseError, match="locked by a run on another host: pid 1 on elsewhere.*"
                                                          "if that run has ended, delete .*run.lock"):
        lifecycle.acquire_work_dir(str(tmp_path))

"""Preemption (classification.engine.preemption): a signal mid-epoch → checkpoint after the running iteration, exit
status 75 (130 for a Ctrl-C), and ``--resume auto`` ends with exactly the weights of an uninterrupted run (one process
and two gloo ranks) and continues the training curve."""
import json
import os
import os.path as osp
import pickle
import random
import re
import signal
import subprocess

import pytest
import torch
from mmengine.config import Config
from torch.utils.data import BatchSampler, DataLoader

from classification.foundation.checkpoints import load_checkpoint_file
from classification.foundation.errors import INTERRUPTED_EXIT
from classification.engine.preemption import (PREEMPTED_EXIT_CODE, PreemptionHook, SkipFirstBatches,
                                              TrainingPreempted, add_preemption_hook, skipping_loader)

FMNIST = "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------------------------------------ units
def test_preempt_skipping_loader_leaves_out_the_first_batches_of_a_copy():
    """The resumed epoch's loader: the original loader's batches without the first k, the original untouched, every
    DataLoader setting carried over."""
    seeded = torch.Generator().manual_seed(3)
    loader = DataLoader(list(range(10)), batch_size=3, shuffle=True, generator=seeded, drop_last=True)
    order = [b.tolist() for b in loader]
    seeded.manual_seed(3)
    resumed = skipping_loader(loader, 2)
    assert len(order) == 3 and len(resumed) == 1 and [b.tolist() for b in resumed] == order[2:]
    assert len(loader) == 3 and isinstance(loader.batch_sampler, BatchSampler)
    assert (resumed.dataset, resumed.collate_fn, resumed.generator, resumed.num_workers) == (
        loader.dataset, loader.collate_fn, loader.generator, loader.num_workers)
    # the sampler mmengine's DistSamplerSeedHook sets the epoch of (batch_sampler.sampler) is the original's
    assert resumed.batch_sampler.sampler is loader.sampler and resumed.batch_sampler.batch_size == 3
    assert list(SkipFirstBatches(BatchSampler(range(4), 2, False), 2)) == []
    copied = pickle.loads(pickle.dumps(SkipFirstBatches(BatchSampler(range(4), 2, False), 1)))
    assert list(copied) == [[2, 3]]


def _reduce_flags_on_two_ranks(rank, init_file, out_dir):
    """One of two gloo ranks: cpu_group() as gloo itself sees it, and as it would under NCCL (the backend the
    preemption module reads, faked), then the rank-1 signal number reduced (MAX) in that group."""
    import json
    from types import SimpleNamespace
    import torch.distributed as torch_dist
    from mmengine.dist import all_reduce
    from classification.engine import preemption
    torch_dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    plain = preemption.cpu_group()
    preemption.torch_dist = SimpleNamespace(get_backend=lambda group=None: "nccl", new_group=torch_dist.new_group)
    group = preemption.cpu_group()
    flag = torch.tensor([int(signal.SIGUSR1) if rank == 1 else 0])
    all_reduce(flag, op="max", group=group)
    with open(osp.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(dict(plain=plain is None, backend=torch_dist.get_backend(group), flag=int(flag)), f)
    torch_dist.destroy_process_group()


def test_preempt_flags_are_reduced_on_the_host_under_nccl(tmp_path):
    """Under NCCL the hook reduces its flag in a new gloo group (no copy to the GPU, no wait for the step); under
    gloo, in the default group."""
    import json
    import torch.multiprocessing as mp
    mp.start_processes(_reduce_flags_on_two_ranks, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="fork")
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got == dict(plain=True, backend="gloo", flag=int(signal.SIGUSR1)), (rank, got)


def test_preempt_exit_status_and_config():
    stop = TrainingPreempted("SIGUSR1", 37)
    assert isinstance(stop, SystemExit) and stop.code == PREEMPTED_EXIT_CODE == os.EX_TEMPFAIL == 75
    assert "iteration 37" in str(stop) and "--resume auto" in str(stop)
    interrupted = TrainingPreempted("SIGINT", 5)  # Ctrl-C: a user's stop, not a requeue
    assert interrupted.code == INTERRUPTED_EXIT == 130 and str(interrupted).startswith("interrupted by Ctrl-C")
    assert PreemptionHook().signals == [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT]
    cfg = Config(dict(custom_hooks=[dict(type="TrainingCurveHook")]))
    add_preemption_hook(cfg)
    add_preemption_hook(cfg)
    assert [h["type"] for h in cfg.custom_hooks] == ["TrainingCurveHook", "PreemptionHook"]
    off = Config(dict(custom_hooks=[dict(type="PreemptionHook", signals=[])]))
    add_preemption_hook(off)
    assert off.custom_hooks == [dict(type="PreemptionHook", signals=[])]
    assert PreemptionHook(["SIGUSR2", 15]).signals == [signal.SIGUSR2, signal.SIGTERM]
    with pytest.raises(ValueError, match="SIGFOO"):
        PreemptionHook(["SIGFOO"])


# ------------------------------------------------------------------------------------------------ end to end
def run_and_signal(cmd, run, pattern, send, **extra_env):
    """Start ``cmd``; on the first output line matching ``pattern`` call ``send(proc)``. Returns (status, output)."""
    proc = subprocess.Popen(cmd, cwd=run.ROOT, env=run.env(PYTHONUNBUFFERED="1", **extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, sent = [], False
    for line in proc.stdout:
        lines.append(line)
        if not sent and re.search(pattern, line):
            send(proc)
            sent = True
    status = proc.wait(timeout=120)
    assert sent, "the run ended before the signal: " + "".join(lines)[-3000:]
    return status, "".join(lines)


def assert_preempted_mid_epoch(work, iters_per_epoch):
    """The preemption checkpoint is in epoch 2, not at its end, and last_checkpoint points at it."""
    path = osp.join(work, "preempted.pth")
    with open(osp.join(work, "last_checkpoint")) as f:
        assert f.read() == path
    meta = load_checkpoint_file(path)["meta"]
    assert iters_per_epoch < meta["iter"] < 2 * iters_per_epoch and meta["epoch"] == 1, meta
    assert not osp.exists(osp.join(work, "epoch_2.pth"))
    return meta["iter"] - iters_per_epoch


def assert_same_training_state(a_path, b_path, iters):
    a, b = load_checkpoint_file(a_path), load_checkpoint_file(b_path)
    assert a["meta"]["iter"] == b["meta"]["iter"] == iters
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0, msg=k)
    for i, state in a["optimizer"]["state"].items():
        for k, v in state.items():
            torch.testing.assert_close(b["optimizer"]["state"][i][k], v, rtol=0, atol=0, msg=f"optimizer {i} {k}")


def run_ok(cmd, run, **extra_env):
    proc = subprocess.run(cmd, cwd=run.ROOT, env=run.env(**extra_env), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


# batch 16: 32 iterations per epoch in one process, 16 per rank with two; log every iteration to see the progress
E2E = ["train_dataloader.batch_size=16", "train_cfg.max_epochs=2", "default_hooks.logger.interval=1"]


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
@pytest.mark.timeout(1200)
def test_preempt_single_process_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path, fmnist_run):
    straight, preempted = str(tmp_path / "straight"), str(tmp_path / "preempted")
    run_ok(fmnist_run.train_cmd(straight, *E2E), fmnist_run)
    status, log = run_and_signal(fmnist_run.train_cmd(preempted, *E2E), fmnist_run,
                                 r"Epoch\(train\)\s*\[2\]\[\s*4/32\]", lambda p: p.send_signal(signal.SIGTERM))
    assert status == PREEMPTED_EXIT_CODE, log[-3000:]
    assert "preempted by SIGTERM" in log
    done = assert_preempted_mid_epoch(preempted, 32)
    resumed = run_ok(fmnist_run.train_cmd(preempted, *E2E) + ["--resume", "auto"], fmnist_run)
    assert f"leaving out the {done} batches of epoch 2" in resumed
    assert_same_training_state(osp.join(straight, "epoch_2.pth"), osp.join(preempted, "epoch_2.pth"), 64)
    curves = [json.loads(open(osp.join(work, "curve.json")).read()) for work in (straight, preempted)]
    assert curves[1]["loss"] == curves[0]["loss"], "the resumed run's curve differs from the uninterrupted one's"


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
@pytest.mark.timeout(1200)
def test_ctrl_c_stops_like_sigterm_and_the_resumed_run_continues_the_curve(tmp_path, fmnist_run):
    """Ctrl-C mid-epoch: the iteration finishes, the checkpoint is written, the way to resume is printed, status 130,
    no traceback. The resumed run's curve.json holds the points of before the stop (the TrainingCurveHook interval
    is 20: iterations 1, 20 | 40, 60) and the validation at its end."""
    work = str(tmp_path / "run")
    status, log = run_and_signal(fmnist_run.train_cmd(work, *E2E), fmnist_run, r"Epoch\(train\)\s*\[2\]\[\s*4/32\]",
                                 lambda p: p.send_signal(signal.SIGINT))
    assert status == INTERRUPTED_EXIT == 130, log[-3000:]
    assert "Ctrl-C: stopping after this iteration and writing a checkpoint" in log
    assert re.search(r"interrupted by Ctrl-C \(SIGINT\) after iteration \d+: exit status 130; continue by running "
                     r"the same command with --resume auto; checkpoint: .*preempted.pth", log), log[-3000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert_preempted_mid_epoch(work, 32)
    resumed = run_ok(fmnist_run.train_cmd(work, *E2E) + ["--resume", "auto"], fmnist_run)
    assert "start: resumed at epoch 2, iteration" in resumed
    curve = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert [it for it, _ in curve["loss"]] == [1, 20, 40, 60]
    assert [it for it, _ in curve["lr"]] == [1, 20, 40, 60] and [it for it, _ in curve["val_top1"]] == [64]
    assert [it for it, _ in curve["pal_alpha"]] == [1, 20, 40, 60]  # the label-policy statistics too
    assert (tmp_path / "run" / "curve.png").is_file()


def free_port() -> str:
    return str(random.randint(20000, 40000))


def rank_process(torchrun_pid: int, rank: int) -> int:
    """pid of the torchrun worker whose environment says RANK=rank."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == torchrun_pid and f"RANK={rank}".encode() in environ:
            return int(pid)
    raise LookupError(f"no worker with RANK={rank} under torchrun (pid {torchrun_pid})")


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
@pytest.mark.timeout(1200)
def test_preempt_two_gloo_ranks_signal_one_rank_then_resume_matches_an_uninterrupted_run(tmp_path, fmnist_run):
    """SIGUSR1 reaches rank 1 only: both ranks stop after the same iteration (rank 0 learns of it through the
    all_reduce), one checkpoint, both exit 75; the resumed run ends where an uninterrupted 2-rank run ends."""
    straight, preempted = str(tmp_path / "straight"), str(tmp_path / "preempted")
    dist = fmnist_run.dist_train_cmd
    run_ok(dist(straight, 2, *E2E), fmnist_run, PORT=free_port())
    status, log = run_and_signal(dist(preempted, 2, *E2E), fmnist_run, r"Epoch\(train\)\s*\[2\]\[\s*3/16\]",
                                 lambda p: os.kill(rank_process(p.pid, 1), signal.SIGUSR1), PORT=free_port())
    # torchrun reports the workers' status 75 and exits non-zero itself
    assert status != 0 and len(re.findall(rf"exitcode\s*:\s*{PREEMPTED_EXIT_CODE}", log)) >= 1, log[-3000:]
    assert "preempted by SIGUSR1" in log
    done = assert_preempted_mid_epoch(preempted, 16)
    resumed = run_ok(dist(preempted, 2, *E2E) + ["--resume", "auto"], fmnist_run, PORT=free_port())
    assert f"leaving out the {done} batches of epoch 2" in resumed
    assert_same_training_state(osp.join(straight, "epoch_2.pth"), osp.join(preempted, "epoch_2.pth"), 32)

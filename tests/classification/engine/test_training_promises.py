"""What the README promises about training, each checked on its mechanism: fp16 AMP clips the unscaled gradients,
``optim_wrapper.accumulative_counts`` really accumulates, ``--amp`` is refused without a GPU, a kill or an exception
during a checkpoint save leaves the previous checkpoint and no temporary file, two gloo ranks end with identical
weights after different mixing draws, and ``tools/test.py``'s top-1 matches an independent evaluation."""
import copy
import json
import os
import os.path as osp
import random
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

import classification.register_all  # noqa: F401  (registration)
from classification.data.fashion_mnist import FashionMNIST
from classification.engine import launch
from classification.foundation.atomic import atomic_write, remove_stale_temporaries
from classification.foundation.checkpoints import load_checkpoint_file
from classification.foundation.errors import UserError
from classification.engine.optim_wrapper import GuardedAmpOptimWrapper

from classification.foundation.host import ROOT
MIXPRO = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
NONE = osp.join(ROOT, "configs/classification/tiny-vit_none_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"


def env(**extra):
    return {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **extra}


def train_config(tmp_path, config, *options, amp=None):
    """The config ``tools/train.py CONFIG [--amp AMP] --cfg-options OPTIONS`` trains with."""
    overrides = launch.parse_args([config, "--cfg-options", *options]).cfg_options if options else None  # as parsed
    return launch.prepare_config(config, work_dir=str(tmp_path / "work"), cfg_options=overrides, amp=amp)


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def total_norm(grads):
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def record_stepped_gradients(model, wrapper):
    """(dict filled with name → gradient each time the optimiser steps, the hook handle)."""
    names = {p: n for n, p in model.named_parameters()}
    stepped = {}

    def grab(optimizer, args, kwargs):
        stepped.update({names[p]: p.grad.detach().float().clone() for group in optimizer.param_groups
                        for p in group["params"] if p.grad is not None})
    return stepped, wrapper.optimizer.register_step_pre_hook(grab)


# ------------------------------------------------------------------------------------- fp16: clip after unscaling
def check_clipping_sees_unscaled_gradients(model, wrapper, device):
    """One ``train_step`` through the AMP wrapper: the norm its clipping measures (kept for the log's train/grad_norm) is
    the norm of the true gradient, not of the loss-scaled one, and the optimiser steps with that gradient clipped to
    max_norm. A wrapper that clipped before unscaling would measure scale × the norm and step with max_norm / scale."""
    max_norm = wrapper.clip_grad_kwargs["max_norm"]
    x, y = (t.to(device) for t in batch(16))
    MessageHub.get_current_instance().update_info("iter", 0)
    model.zero_grad()
    loss, _ = model.parse_losses(model(x, y, mode="loss"))
    loss.backward()  # fp32 reference gradient
    reference = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    true_norm = total_norm(reference.values())
    scale = float(wrapper.loss_scaler.get_scale())
    assert scale >= 1024 and true_norm > 3 * max_norm, "the premise: a large loss scale and clipping that acts"
    stepped, hook = record_stepped_gradients(model, wrapper)
    model.train_step(dict(inputs=x, data_samples=y), wrapper)
    hook.remove()
    assert stepped, "the optimiser did not step (the loss scaler found non-finite gradients)"
    measured = float(wrapper.pop_grad_norm()["grad_norm"])  # defer=True: the norm SyncFreeRuntimeInfoHook logs
    assert measured == pytest.approx(true_norm, rel=0.05), f"clipping measured {measured}, true norm {true_norm}"
    assert total_norm(stepped.values()) == pytest.approx(max_norm, rel=1e-3)
    flat = torch.cat([stepped[n].flatten() for n in reference])
    ref = torch.cat([g.flatten() for g in reference.values()])
    assert float(torch.nn.functional.cosine_similarity(flat, ref.float(), dim=0)) > 0.98


def test_amp_fp16_config_clips_unscaled_gradients_cpu(tmp_path, monkeypatch):
    """CPU: the wrapper ``--amp fp16`` configures (GuardedAmpOptimWrapper, dynamic loss scale, the config's clip_grad),
    driven through a real ``train_step``. Only what needs a GPU is replaced: the CUDA check that lets the wrapper be
    built, its loss scaler by torch's CPU GradScaler (the same algorithm), fp16 autocast by the CPU's bf16."""
    MMLogger.get_current_instance()  # mmengine's logger looks up the CUDA device when first made: not under the fake
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        cfg = train_config(tmp_path, NONE, amp="fp16")
        small = train_config(tmp_path, NONE, "optim_wrapper.clip_grad.max_norm=0.05", amp="fp16")
    assert cfg.optim_wrapper.type == "GuardedAmpOptimWrapper" and cfg.optim_wrapper.dtype == "float16"
    assert cfg.optim_wrapper.loss_scale == "dynamic" and cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)
    with monkeypatch.context() as m:  # bf16: no loss scaling at all (a disabled scaler never reads the GPU)
        m.setattr(torch.cuda, "is_available", lambda: True)
        bf16 = train_config(tmp_path, NONE, amp="bf16")
    assert bf16.optim_wrapper.dtype == "bfloat16" and bf16.optim_wrapper.loss_scale == dict(enabled=False)
    torch.manual_seed(0)
    model = MODELS.build(small.model)
    with monkeypatch.context() as m:
        m.setattr(amp_optimizer_wrapper, "is_cuda_available", lambda: True)
        wrapper = build_optim_wrapper(model, small.optim_wrapper)
    assert type(wrapper) is GuardedAmpOptimWrapper and wrapper.clip_grad_kwargs == dict(max_norm=0.05)
    wrapper.loss_scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    wrapper.cast_dtype = torch.bfloat16
    check_clipping_sees_unscaled_gradients(model, wrapper, "cpu")


@pytest.mark.gpu
def test_amp_fp16_clips_unscaled_gradients_on_the_gpu(tmp_path):
    """The same on a GPU, nothing replaced: fp16 autocast, CUDA GradScaler (initial scale 2^10 so that the tiny
    model's fp16 activations' gradients do not overflow on the first step)."""
    cfg = train_config(tmp_path, NONE, "optim_wrapper.clip_grad.max_norm=0.05",
                       "optim_wrapper.loss_scale.init_scale=1024.0", amp="fp16")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).cuda()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper) is GuardedAmpOptimWrapper and wrapper.cast_dtype == torch.float16
    check_clipping_sees_unscaled_gradients(model, wrapper, "cuda")


# ------------------------------------------------------------------------------------------- gradient accumulation
def test_accumulating_four_quarter_batches_equals_one_step_of_the_full_batch(tmp_path):
    """``--cfg-options optim_wrapper.accumulative_counts=4``: 4 iterations of B/4 step the optimiser once, with the
    gradient (clipped as a whole) of one iteration of B. The none method: with mixing, each quarter would pair its
    samples among themselves, so its gradient would differ from the full batch's by design; the tiny ViT has no
    dropout, drop path or batch norm, so the only difference left is the order of float sums."""
    clip = "optim_wrapper.clip_grad.max_norm=0.05"  # small enough to act: clipping must see the summed gradient
    full_cfg = train_config(tmp_path, NONE, clip)
    acc_cfg = train_config(tmp_path, NONE, clip, "optim_wrapper.accumulative_counts=4")
    torch.manual_seed(0)
    full_model = MODELS.build(full_cfg.model)
    acc_model = copy.deepcopy(full_model)
    full, acc = build_optim_wrapper(full_model, full_cfg.optim_wrapper), build_optim_wrapper(acc_model,
                                                                                              acc_cfg.optim_wrapper)
    x, y = batch(32)
    full_steps, h1 = record_stepped_gradients(full_model, full)
    full_model.train_step(dict(inputs=x, data_samples=y), full)
    full_norm = float(full.pop_grad_norm()["grad_norm"])  # defer=True: the norm the hook logs as train/grad_norm
    assert full_norm > 0.05, "the premise: clipping acts"
    start = {k: v.detach().clone() for k, v in acc_model.named_parameters()}
    acc_steps, h2 = record_stepped_gradients(acc_model, acc)
    for i in range(4):
        acc_model.train_step(dict(inputs=x[8 * i:8 * i + 8], data_samples=y[8 * i:8 * i + 8]), acc)
        if i < 3:
            assert not acc_steps, f"the optimiser stepped after {i + 1} of 4 accumulated iterations"
            assert all(torch.equal(v, start[k]) for k, v in acc_model.named_parameters())
    h1.remove(), h2.remove()
    assert float(acc.pop_grad_norm()["grad_norm"]) == pytest.approx(full_norm, rel=1e-5)
    assert acc_steps.keys() == full_steps.keys()
    for name, grad in full_steps.items():
        torch.testing.assert_close(acc_steps[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    states = [w.optimizer.state_dict()["state"] for w in (full, acc)]
    assert {int(s["step"]) for s in states[0].values()} == {int(s["step"]) for s in states[1].values()} == {1}
    for (name, p), q in zip(full_model.named_parameters(), acc_model.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-5, msg=name)


# ---------------------------------------------------------------------------------------------- --amp without GPU
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_is_refused_without_a_gpu(tmp_path, monkeypatch, amp):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # main() installs the weights-only checkpoint loader process-wide: undone after the test
    monkeypatch.setattr(CheckpointLoader, "_schemes", dict(CheckpointLoader._schemes))
    work = tmp_path / "work"
    with pytest.raises(UserError, match=f"--amp {amp} needs a GPU"):
        launch.main([NONE, "--amp", amp, "--work-dir", str(work)])
    assert not work.exists(), "training started before the refusal"


# ------------------------------------------------------------------------------------------ saves that cannot tear
def temporaries(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith(".tmp-"))


def test_an_exception_during_a_save_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = str(tmp_path / "epoch_1.pth")
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), path, backend_args=dict(backend="atomic_local"))
    before = open(path, "rb").read()

    def half_then_fail(tmp):
        with open(tmp, "wb") as f:
            f.write(before[:len(before) // 2])
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, half_then_fail)
    assert open(path, "rb").read() == before and temporaries(tmp_path) == []
    # through mmengine's save path (what CheckpointHook calls), failing at the fsync after the whole write
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error"):
        save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), path, backend_args=dict(backend="atomic_local"))
    assert open(path, "rb").read() == before and temporaries(tmp_path) == []
    assert torch.equal(load_checkpoint_file(path)["state_dict"]["w"], torch.ones(3))


KILLED_WRITER = """
import os, signal, sys
from classification.foundation.atomic import atomic_write

def write(tmp):
    with open(tmp, "wb") as f:
        f.write(b"partial checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the save
atomic_write(sys.argv[1], write)
"""


def test_a_kill_during_a_save_keeps_the_previous_checkpoint_and_the_next_save_clears_its_temporary(tmp_path):
    path = str(tmp_path / "epoch_1.pth")
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), path, backend_args=dict(backend="atomic_local"))
    before = open(path, "rb").read()
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, path], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert open(path, "rb").read() == before, "the previous checkpoint changed"
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].endswith("-epoch_1.pth"), left  # the kill landed inside the save
    assert open(tmp_path / left[0], "rb").read() == b"partial checkpoint"
    live = tmp_path / f".tmp-{os.getpid()}-abcd-epoch_9.pth"  # a temporary file of a writer that is still running
    live.write_bytes(b"in progress")
    # the next save into the directory (a resumed run's) removes the dead writer's temporary file, not the live one
    save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), str(tmp_path / "epoch_2.pth"),
                    backend_args=dict(backend="atomic_local"))
    assert temporaries(tmp_path) == [live.name]
    assert remove_stale_temporaries(str(tmp_path)) == []
    assert torch.equal(load_checkpoint_file(path)["state_dict"]["w"], torch.ones(3))


# ----------------------------------------------------------------------------------- 2 gloo ranks, end to end
RANK_PROBE = '''
"""Test probe: records every MixSchedule draw of this rank and, after training, saves them with the weights."""
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

import mixpro_core

DRAWS = []
_schedule_call = mixpro_core.MixSchedule.__call__


def _recording_call(self, *args, **kwargs):
    mixed = _schedule_call(self, *args, **kwargs)
    DRAWS.append(dict(kind=mixed.kind, lam=mixed.lam_area.tolist(), partner=mixed.partner.tolist()))
    return mixed


mixpro_core.MixSchedule.__call__ = _recording_call


@HOOKS.register_module()
class RankProbeHook(Hook):
    def after_train(self, runner):
        model = getattr(runner.model, "module", runner.model)
        torch.save(dict(state_dict=model.state_dict(), draws=DRAWS), f"{runner.work_dir}/rank{get_rank()}.pt")
'''


@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_two_gloo_ranks_end_with_identical_weights_after_different_mixing(tmp_path):
    (tmp_path / "rank_probe.py").write_text(RANK_PROBE)
    config = tmp_path / "probe_config.py"
    config.write_text(f'_base_ = ["{MIXPRO}"]\n'
                      f'custom_imports = dict(imports=["classification.register_all", "rank_probe"], allow_failed_imports=False)\n'
                      f'custom_hooks = [dict(type="RankProbeHook")]\n')
    work = tmp_path / "work"
    small = ["train_dataloader.dataset.limit=256", "train_dataloader.batch_size=32", "train_dataloader.num_workers=0",
             "train_dataloader.persistent_workers=False", "train_cfg.max_epochs=1", "train_cfg.val_interval=10"]
    proc = subprocess.run(["bash", "tools/dist_train.sh", str(config), "2", "--work-dir", str(work), "--cfg-options",
                           *small], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=env(PYTHONPATH=f"{ROOT}:{tmp_path}", PORT=str(random.randint(20000, 40000))))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks = [torch.load(work / f"rank{r}.pt", weights_only=True) for r in range(2)]
    draws = [r["draws"] for r in ranks]
    assert len(draws[0]) == len(draws[1]) == 4  # 256 images / 2 ranks / 32 per batch
    assert all(a != b for a, b in zip(*draws)), "the ranks drew the same mixing in some iteration"
    checkpoint = load_checkpoint_file(str(work / "epoch_1.pth"))["state_dict"]
    assert ranks[0]["state_dict"].keys() == ranks[1]["state_dict"].keys() == checkpoint.keys()
    for name, value in ranks[0]["state_dict"].items():
        assert torch.equal(ranks[1]["state_dict"][name], value), f"{name} differs between the ranks"
        assert torch.equal(checkpoint[name], value), name


# ------------------------------------------------------------------------------------------ tools/test.py's top-1
@pytest.mark.slow
@pytest.mark.needs_data(FMNIST)
def test_tools_test_top1_matches_an_independent_evaluation(tmp_path):
    """A checkpoint trained for a few steps (so its predictions are its own, unlike a fresh model's near-constant
    ones): tools/test.py's top-1 equals the accuracy of the same weights computed here by hand."""
    cfg = Config.fromfile(NONE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    data = FashionMNIST(FMNIST, "train", transform=dict(type="fashion_mnist", is_train=False, border=2), limit=1920)
    images = torch.stack([data[i]["inputs"] for i in range(len(data))])
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    for step in range(30):
        i = torch.arange(64) + 64 * step
        optimizer.zero_grad()
        model.parse_losses(model(images[i], data.targets[i], mode="loss"))[0].backward()
        optimizer.step()
    checkpoint = str(tmp_path / "trained.pth")
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)

    test = FashionMNIST(FMNIST, "test", transform=dict(type="fashion_mnist", is_train=False, border=2), limit=300)
    evaluated = MODELS.build(cfg.model).eval()
    evaluated.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    with torch.no_grad():
        logits = evaluated(torch.stack([test[i]["inputs"] for i in range(len(test))]), mode="tensor")
        fresh = MODELS.build(cfg.model).eval()(torch.stack([test[i]["inputs"] for i in range(len(test))]))
    ours = float((logits.argmax(1) == test.targets).double().mean() * 100)
    untrained = float((fresh.argmax(1) == test.targets).double().mean() * 100)
    assert ours - untrained > 20, (ours, untrained)  # a tool that ignored the checkpoint would not match

    proc = subprocess.run([sys.executable, "tools/test.py", NONE, checkpoint, "--work-dir", str(tmp_path / "test"),
                           "--cfg-options", "test_dataloader.dataset.limit=300", "test_dataloader.num_workers=0",
                           "test_dataloader.persistent_workers=False"], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())["metrics"]
    assert metrics["top1"] == pytest.approx(ours, abs=1e-3)
    assert f"top1: {metrics['top1']}" in proc.stdout  # printed as a plain number

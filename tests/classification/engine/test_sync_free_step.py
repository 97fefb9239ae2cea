"""The sync-free training step: the deferred non-finite guard of the optimiser wrapper
(classification.engine.optim_wrapper) and the runtime-info hook that reads log variables and the wrapper's deferred
values only when a reader needs them (classification.engine.hooks.SyncFreeRuntimeInfoHook).

- CPU: a NaN loss under the deferred guard changes neither the parameters nor the AdamW state (moments, step count),
  nor does any later step until the host reads the flag and raises FloatingPointError naming the failed iteration;
  the hook writes one value per iteration into the message hub, only at the flush points, and raises before a
  checkpoint is saved after a failed step.
- GPU (``-m gpu``): MixPro training steps of a small ViT through mmengine's ``train_step`` under
  ``torch.cuda.set_sync_debug_mode``: the number of host↔device synchronisations from the start of the iteration
  to the end of the optimiser step is 0 (every synchronising call found is listed in the failure message).
"""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.engine.hooks import SyncFreeRuntimeInfoHook, TrainingCurveHook
from classification.engine.optim_wrapper import GuardedAmpOptimWrapper, GuardedOptimWrapper


def tiny_mixpro(device="cpu"):
    """The tiny-vit MixPro Fashion-MNIST model (MixPro schedule, PAL labels) at 28 px."""
    mix = [dict(type="maskmix", prob=0.5), dict(type="cutmix", prob=0.25), dict(type="mixup", prob=0.25)]
    return MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_size=7),
                             mix_defaults=dict(mask_size=7), mix=mix,
                             label_policy=dict(type="PALLabels"))).to(device)


def batch(seed=0, nan=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 1, 28, 28, generator=g)
    return dict(inputs=torch.full_like(x, float("nan")) if nan else x, data_samples=torch.arange(8) % 10)


def snapshot(model, optimizer):
    params = {k: v.detach().clone() for k, v in model.state_dict().items() if k != "mix_step"}
    state = {(i, k): v.clone() for i, p in enumerate(model.parameters())
             for k, v in optimizer.state.get(p, {}).items()}
    return params, state


def assert_same(a, b):
    assert a[0].keys() == b[0].keys() and a[1].keys() == b[1].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), f"parameter {k} changed"
    for k in a[1]:
        assert torch.equal(a[1][k], b[1][k]), f"optimiser state {k} changed"


def test_deferred_guard_skips_the_bad_update_and_every_later_one_then_raises():
    torch.manual_seed(0)
    model = tiny_mixpro()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    wrapper = GuardedOptimWrapper(optimizer, defer=True)
    assert wrapper.deferred
    model.train_step(batch(0), wrapper)  # a good step: applied
    good = snapshot(model, optimizer)
    assert all(float(v) == 1.0 for (_, k), v in good[1].items() if k == "step")
    wrapper.check(wait=True)  # nothing failed so far
    model.train_step(batch(1, nan=True), wrapper)  # iteration 2: NaN loss, no host read, no exception here
    assert_same(snapshot(model, optimizer), good)
    model.train_step(batch(2), wrapper)  # a finite step after the failure is skipped too (sticky)
    assert_same(snapshot(model, optimizer), good)
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan on rank 0\) at iteration 2 "):
        wrapper.check(wait=True)


def test_deferred_guard_under_a_loss_scaler_skips_through_the_nan_gradients(monkeypatch):
    """fp16 AMP: the scaler, not found_inf, skips the step; the guard's NaN loss factor makes every gradient NaN. The
    AMP wrapper with torch's CPU GradScaler (the same algorithm) in place of the CUDA one, the CPU's bf16 autocast."""
    torch.manual_seed(0)
    model = tiny_mixpro()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # not fused: the scaler skips on the host
    monkeypatch.setattr(amp_optimizer_wrapper, "is_cuda_available", lambda: True)
    wrapper = GuardedAmpOptimWrapper(optimizer=optimizer, dtype="bfloat16", defer=True)
    wrapper.loss_scaler = torch.amp.GradScaler("cpu")
    assert wrapper.deferred
    model.train_step(batch(0), wrapper)
    good = snapshot(model, optimizer)
    model.train_step(batch(1, nan=True), wrapper)
    assert_same(snapshot(model, optimizer), good)
    model.train_step(batch(2), wrapper)  # a finite step after the failure: its gradients are made NaN, skipped too
    assert_same(snapshot(model, optimizer), good)
    with pytest.raises(FloatingPointError, match="at iteration 2 "):
        wrapper.check(wait=True)


def test_deferred_guard_under_bf16_amp_skips_through_found_inf(monkeypatch):
    """``--amp bf16``: no loss scaler (disabled), so the fused optimiser skips through found_inf as without AMP; the
    clipping norm is kept for the reader and found_inf does not outlive the step."""
    torch.manual_seed(0)
    model = tiny_mixpro()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    monkeypatch.setattr(amp_optimizer_wrapper, "is_cuda_available", lambda: True)
    wrapper = GuardedAmpOptimWrapper(optimizer=optimizer, dtype="bfloat16", loss_scale=dict(enabled=False),
                                     clip_grad=dict(max_norm=5.0), defer=True)
    assert wrapper.deferred
    model.train_step(batch(0), wrapper)
    good = snapshot(model, optimizer)
    assert set(wrapper.pop_grad_norm()) == {"grad_norm"} and wrapper.pop_grad_norm() == {}
    for data in (batch(1, nan=True), batch(2)):
        model.train_step(data, wrapper)
        assert_same(snapshot(model, optimizer), good)
    assert not hasattr(optimizer, "found_inf")
    with pytest.raises(FloatingPointError, match="at iteration 2 "):
        wrapper.check(wait=True)


def test_a_guard_needs_an_optimiser_that_can_skip_on_the_device():
    """Not fused and no loss scaler: the guard stays a host read before the optimiser step, even with defer=True."""
    torch.manual_seed(0)
    model = tiny_mixpro()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    wrapper = GuardedOptimWrapper(optimizer, defer=True)
    assert not wrapper.deferred
    model.train_step(batch(0), wrapper)
    good = snapshot(model, optimizer)
    with pytest.raises(FloatingPointError,
                       match=r"at iteration 2 \(counted by the optimiser wrapper\): stopping before"):
        model.train_step(batch(1, nan=True), wrapper)
    assert_same(snapshot(model, optimizer), good)


def test_the_update_count_travels_in_the_state_dict_and_names_the_failed_iteration():
    """The wrapper counts its updates (one per training iteration) and saves the count with the optimiser state: a
    wrapper loaded from the state after 3 updates names its first failure iteration 4, as the uninterrupted one would;
    a state saved before the count existed loads with a warning."""
    torch.manual_seed(0)
    model = tiny_mixpro()
    first = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    for i in range(3):
        model.train_step(batch(i), first)
    state = first.state_dict()
    assert first.updates == 3 and set(state) == {"state", "param_groups", "guarded_updates"}
    resumed = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    resumed.load_state_dict(state)
    assert resumed.updates == 3 and state["guarded_updates"] == 3  # the caller's dict is left whole
    with pytest.raises(FloatingPointError, match=r"at iteration 4 \(counted by the optimiser wrapper\)"):
        model.train_step(batch(3, nan=True), resumed)
    old = {k: v for k, v in state.items() if k != "guarded_updates"}
    with pytest.warns(UserWarning, match="no guarded_updates"):
        GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3)).load_state_dict(old)


def test_a_deferred_failure_raises_before_the_state_is_saved():
    """No checkpoint holds a state after a failed update, whoever reads the flags: ``state_dict`` reads them all."""
    torch.manual_seed(0)
    model = tiny_mixpro()
    wrapper = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True), defer=True)
    model.train_step(batch(0), wrapper)
    assert wrapper.state_dict()["guarded_updates"] == 1
    model.train_step(batch(1, nan=True), wrapper)
    with pytest.raises(FloatingPointError, match="at iteration 2 "):
        wrapper.state_dict()


def test_the_schedules_configure_the_deferred_guard():
    """The mode is the wrapper's own configuration (``defer=True`` in the classification schedules), not a hook's."""
    cfg = Config.fromfile("configs/classification/_base_/schedules/adamw_300e_in1k.py")
    wrapper = build_optim_wrapper(tiny_mixpro(), cfg.optim_wrapper)
    assert type(wrapper) is GuardedOptimWrapper and wrapper.deferred


class Loader(list):
    dataset = None


def fake_runner(model, optimizer, interval=3, iters_per_epoch=100):
    hub = MessageHub.get_instance(f"sync-free-{id(model)}")
    logger = SimpleNamespace(info=lambda msg: None)
    return SimpleNamespace(model=model, optim_wrapper=GuardedOptimWrapper(optimizer, defer=True), message_hub=hub,
                           rank=0, iter=0, epoch=0, logger=logger, hooks=[TrainingCurveHook(interval=interval)],
                           train_dataloader=Loader([None] * iters_per_epoch), max_iters=1000, max_epochs=10)


def test_the_hook_writes_one_value_per_iteration_at_the_flush_points():
    torch.manual_seed(0)
    model = tiny_mixpro()
    runner = fake_runner(model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True), interval=3)
    hook = SyncFreeRuntimeInfoHook()
    hook.before_train(runner)
    assert runner.optim_wrapper.deferred
    losses = []
    for it in range(6):
        runner.iter = it
        hook.before_train_iter(runner, it)
        log = model.train_step(batch(it), runner.optim_wrapper)
        losses.append(float(log["loss"].detach()))
        hook.after_train_iter(runner, it, outputs=log)
        logged = runner.message_hub.log_scalars["train/loss"].data[0].tolist()
        # flushed after iteration 1 (the first) and at the curve hook's interval (iterations 3 and 6)
        assert len(logged) == {0: 1, 1: 1, 2: 3, 3: 3, 4: 3, 5: 6}[it]
        assert logged == pytest.approx(losses[:len(logged)], rel=1e-6)
    assert runner.message_hub.log_scalars["train/lr"].current() == pytest.approx(1e-3)
    hook.after_train(runner)
    assert runner.optim_wrapper.deferred, "the wrapper's mode is its configuration's: no hook switches it"


def test_the_hook_logs_the_clipped_gradient_norm_without_reading_it_at_each_step():
    """clip_grad by norm: the hook's run clips exactly like mmengine's (same parameters after 4 steps) and logs the
    same grad_norm values, one per update, but only at the flush points; mmengine's clip_func is never replaced."""
    def run(deferred):
        torch.manual_seed(0)
        model = tiny_mixpro()
        runner = fake_runner(model, torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True), interval=3)
        runner.message_hub = MessageHub.get_instance(f"clip-{deferred}-{id(model)}")  # the wrapper's hub
        optimizer, clip = runner.optim_wrapper.optimizer, dict(max_norm=0.5)
        runner.optim_wrapper = (GuardedOptimWrapper(optimizer, clip_grad=clip, defer=True) if deferred
                                else OptimWrapper(optimizer, clip_grad=clip))  # the reference: mmengine's own
        hook = SyncFreeRuntimeInfoHook()
        if deferred:
            hook.before_train(runner)
        counts = []
        for it in range(4):
            runner.iter = it
            log = model.train_step(batch(it), runner.optim_wrapper)
            if deferred:
                hook.after_train_iter(runner, it, outputs=log)
            history = runner.message_hub.log_scalars.get("train/grad_norm")
            counts.append(0 if history is None else len(history.data[0]))
        if deferred:
            hook.after_train(runner)
            assert runner.optim_wrapper.clip_func is torch.nn.utils.clip_grad_norm_
        norms = runner.message_hub.log_scalars["train/grad_norm"].data[0].tolist()
        return model.state_dict(), norms, counts

    plain, deferred = run(False), run(True)
    assert plain[2] == [1, 2, 3, 4] and deferred[2] == [1, 1, 3, 3]  # flushed after iterations 1 and 3
    assert deferred[1] == pytest.approx(plain[1], rel=1e-6) and max(plain[1]) > 0.5  # the clipping was active
    for key, value in plain[0].items():
        assert torch.equal(value, deferred[0][key]), key


def test_the_hook_stops_the_run_before_a_checkpoint_after_a_non_finite_loss():
    torch.manual_seed(0)
    model = tiny_mixpro()
    runner = fake_runner(model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True), interval=50)
    hook = SyncFreeRuntimeInfoHook()
    hook.before_train(runner)
    for it, nan in enumerate([False, False, True]):
        runner.iter = it
        log = model.train_step(batch(it, nan=nan), runner.optim_wrapper)
        try:
            hook.after_train_iter(runner, it, outputs=log)
        except FloatingPointError as error:  # on the CPU the flag is read at once
            assert "at iteration 3 " in str(error)
            return
    with pytest.raises(FloatingPointError, match="at iteration 3 "):
        hook.before_save_checkpoint(runner, {})


@pytest.mark.gpu
@pytest.mark.parametrize("amp", [None, "bfloat16"])
def test_mixpro_training_steps_do_not_synchronise(amp):
    """Six MixPro steps (maskmix / cutmix / mixup drawn by the schedule) of the tiny ViT: zero synchronisations from
    the start of train_step (pinned CPU batch in) to the end of the optimiser step, with a fused AdamW and gradient
    clipping by norm (the norm kept on the device for SyncFreeRuntimeInfoHook, not read with float() as mmengine
    does), under fp32 and bf16 autocast (no loss scaler: a GradScaler's scale reads are synchronisations)."""
    torch.manual_seed(0)
    model = tiny_mixpro("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    clip = dict(max_norm=5.0)
    wrapper = (GuardedOptimWrapper(optimizer, clip_grad=clip, defer=True) if amp is None else
               GuardedAmpOptimWrapper(optimizer=optimizer, dtype=amp, loss_scale=dict(enabled=False), clip_grad=clip,
                                      defer=True))
    runner = fake_runner(model, optimizer)
    runner.optim_wrapper = wrapper
    SyncFreeRuntimeInfoHook().before_train(runner)  # the reader of the wrapper's deferred guard and gradient norm
    assert wrapper.deferred and wrapper.clip_func is torch.nn.utils.clip_grad_norm_
    data = [{k: v.pin_memory() for k, v in batch(i).items()} for i in range(8)]
    for d in data[:2]:  # warm-up: cuBLAS / allocator initialisation
        model.train_step(d, wrapper)
    torch.cuda.synchronize()
    kinds = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for i, d in enumerate(data[2:]):
                index = model.method.mixer.choose(model._mix_generator())
                kinds.add(model.method.mixer.mixers[index].name if index is not None else "none")
                model.train_step(d, wrapper)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 0, "synchronising calls in the step:\n" + "\n".join(syncs)
    assert kinds & {"maskmix"}, f"no MaskMix batch among the steps ({kinds})"
    torch.cuda.synchronize()
    assert all(torch.isfinite(p).all() for p in model.parameters())

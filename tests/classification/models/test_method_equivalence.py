"""The method contract changed no method: every tiny-vit Fashion-MNIST method config gives, on a fixed batch, the
loss, λ, logged statistics and gradient it gave before the contract.

Where the numbers come from: ``data/method_equivalence_57c6e26.json`` was recorded with the code of commit 57c6e26
(before ``mixpro_core.method``) by :func:`record` below as it was then — the only difference: λ was read by wrapping
the classifier's ``policy`` (the old ``MixClassifier.loss`` dropped the ``LabelResult``), and the batch kind by a
hook on its ``mixer``; HTM steps record the area λ, as :class:`mixpro_core.MethodResult` defines. One thread, fresh
model per config seeded with 0, global seed 100 + t before step t (R-Mix / RL-Mix draw from it), steps 0-5 of the
schedule (so each config's mixers all run), plus HTM with τ 1, ρ 0 so that HTM mixes at initialisation.
Regenerate (only for an intended change of a method's semantics, and say so in the commit):
``python tests/classification/models/test_method_equivalence.py`` rewrites the file from the current code.

On the recording's platform (torch version and CPU capability in the file) the values must be equal bit for bit;
elsewhere float kernels may round differently, and a relative 1e-5 is allowed. The explicit label formulas are
checked live for the schedule's batches too (:func:`test_the_losses_are_the_explicit_label_formulas`).
"""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from mixpro_core import mixed_targets, soft_target_cross_entropy

HERE = osp.dirname(osp.abspath(__file__))
from classification.foundation.host import ROOT
DATA = osp.join(HERE, "data", "method_equivalence_57c6e26.json")
STEPS, B = 6, 8


def fixed_batch():
    g = torch.Generator().manual_seed(1234)
    return torch.randn(B, 1, 32, 32, generator=g), torch.randint(0, 10, (B,), generator=g)


def cases() -> dict:
    """name → model config of every tiny-vit Fashion-MNIST classification config (+ HTM that mixes at init)."""
    out = {}
    for path in sorted(glob.glob(osp.join(ROOT, "configs/classification/tiny-vit*_fmnist.py"))):
        model = Config.fromfile(path).model.to_dict()
        if model.get("method") is None:  # the configs that existed at 57c6e26 (new methods have their own tests)
            out[osp.basename(path)[:-3]] = model
    htm = dict(out["tiny-vit_htm_1xb128-20e_fmnist"])
    htm["token_mixup"] = dict(htm["token_mixup"], tau=1.0, rho=0.0)
    out["tiny-vit_htm_1xb128-20e_fmnist+tau1"] = htm
    return out


def record(model, x, y) -> list:
    """Per step: the batch kind, loss, λ (B,), statistics and the gradient's norm and sum (float64)."""
    seen = {}
    model.method.register_forward_hook(lambda _m, _inputs, result: seen.__setitem__("result", result))
    model.method.mixer.register_forward_hook(lambda _m, _inputs, batch: seen.__setitem__("batch", batch))
    steps = []
    for t in range(STEPS):
        seen.clear()
        torch.manual_seed(100 + t)
        model.zero_grad(set_to_none=True)
        out = model.loss(x, y)
        out["loss"].backward()
        grads = torch.cat([p.grad.double().flatten() for p in model.parameters() if p.grad is not None])
        result = seen["result"]
        assert out == dict(loss=result.loss, **result.stats)
        steps.append(dict(kind=seen["batch"].kind, loss=float(out["loss"].detach()),
                          lam=[float(v) for v in result.lam.detach()],
                          stats={k: float(v) for k, v in out.items() if k != "loss"},
                          grad_norm=float(grads.norm()), grad_sum=float(grads.sum())))
    return steps


def build(cfg: dict):
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


RECORDED = json.load(open(DATA))


def same_platform() -> bool:
    return (RECORDED["torch"], RECORDED["cpu_capability"]) == (torch.__version__,
                                                               torch.backends.cpu.get_cpu_capability())


def assert_same(new, old, where):
    if isinstance(old, dict):
        assert sorted(new) == sorted(old), where
        for key in old:
            assert_same(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(old, str) or same_platform():
        assert new == old, f"{where}: {new!r} != {old!r} (recorded at 57c6e26)"
    else:
        assert new == pytest.approx(old, rel=1e-5, abs=1e-7), where


def test_every_fmnist_method_config_was_recorded():
    assert sorted(cases()) == sorted(RECORDED["cases"])


@pytest.mark.parametrize("name", sorted(RECORDED["cases"]))
def test_each_method_gives_what_it_gave_before_the_contract(name, one_thread):
    x, y = fixed_batch()
    assert_same(record(build(cases()[name]), x, y), RECORDED["cases"][name], name)


@pytest.mark.parametrize("name", ["tiny-vit_baseline_1xb128-20e_fmnist", "tiny-vit_transmix_1xb128-20e_fmnist",
                                  "tiny-vit_mixpro_1xb128-20e_fmnist", "tiny-vit_mixpro-smooth_1xb128-20e_fmnist"])
def test_the_losses_are_the_explicit_label_formulas(name):
    """Live: loss = soft CE against λ·ŷ + (1−λ)·ŷ[partner] (smoothing 0.1), except on MixPro's MaskMix batches: the
    unsmoothed target (hard-label CE) unless keep_smoothing."""
    model = build(cases()[name])
    seen = {}
    model.method.register_forward_hook(lambda _m, _i, result: seen.__setitem__("result", result))
    model.method.mixer.register_forward_hook(lambda _m, _i, batch: seen.__setitem__("batch", batch))
    x, y = fixed_batch()
    kinds = set()
    for _ in range(STEPS):
        loss = model.loss(x, y)["loss"]
        batch, lam = seen["batch"], seen["result"].lam
        hard = batch.kind == "maskmix" and name == "tiny-vit_mixpro_1xb128-20e_fmnist"
        with torch.no_grad():
            logits = model.backbone(batch.images)
        target = mixed_targets(y, batch.partner, lam.detach(), 10, 0.0 if hard else 0.1)
        torch.testing.assert_close(loss.detach(), soft_target_cross_entropy(logits, target), rtol=0, atol=1e-6)
        kinds.add(batch.kind)
    assert len(kinds) >= 2, kinds


if __name__ == "__main__":
    import subprocess

    torch.set_num_threads(1)
    x, y = fixed_batch()
    result = {name: record(build(cfg), x, y) for name, cfg in cases().items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    json.dump(dict(RECORDED, commit=f"{commit.strip()} + working tree", torch=torch.__version__,
                   cpu_capability=torch.backends.cpu.get_cpu_capability(), cases=result, recorded_by=__file__),
              open(DATA, "w"), indent=0, sort_keys=True)

"""MixClassifier's training step, checked where plausible bugs would hide (docs/methods.md, "Method schedule", "PAL",
"TransMix"):

- the mixing of step t on rank r is a function of (mix_seed, t, r) and of nothing else, and it changes with each of
  the three (ranks that mixed alike would train on the same mixed batches);
- the attention that labels a batch comes from the forward of that mixed batch, not of the clean images — checked
  on a model whose last-block attention is peaked, so that the two differ by far more than the tolerance;
- a non-finite loss on any rank stops every rank (the flag is agreed with an all-reduce).
"""
import itertools

import pytest
import torch
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
import classification.engine.optim_wrapper as optim_wrapper
import classification.models.mix_classifier as mix_classifier
from classification.engine.optim_wrapper import GuardedOptimWrapper
from mixpro_core import forward_with_attention, pal_lambda, transmix_lambda

B, SIZE = 8, 28


def tiny(mix, label_policy="AreaLabels", mix_seed=0, heads=3):
    """tiny_vit at patch 7 (4×4 tokens), MaskMix cells of one token; seeded, so every test sees the same weights."""
    torch.manual_seed(0)
    return MODELS.build(dict(type="MixClassifier", num_classes=10, mix_seed=mix_seed, mix=mix,
                             backbone=dict(type="tiny_vit", patch_size=7, depth=2, num_heads=heads,
                                           drop_path_rate=0.0),
                             mix_defaults=dict(mask_size=7), label_policy=dict(type=label_policy))).eval()


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 1, SIZE, SIZE, generator=g), torch.randperm(10, generator=g)[:B]


def capture_batches(model):
    """The MixBatch of each ``loss`` call, taken from the schedule's output (the batch the step really trained on)."""
    seen = []
    model.method.mixer.register_forward_hook(lambda _module, _inputs, batch: seen.append(batch))
    return seen


def at_step(model, step):
    model.load_state_dict({**model.state_dict(), "mix_step": torch.tensor(step)})


# ------------------------------------------------------------------------------------------------ mixing randomness
def mixed_at(monkeypatch, mix_seed, step, rank, mix=None):
    """The batch a fresh model with ``mix_seed`` mixes at training step ``step`` on rank ``rank``."""
    monkeypatch.setattr(mix_classifier, "get_rank", lambda *args, **kwargs: rank)
    model = tiny(mix or [dict(type="maskmix", prob=1.0)], mix_seed=mix_seed)
    seen = capture_batches(model)
    at_step(model, step)
    x, y = data()
    model(x, y, mode="loss")
    return seen[0]


def test_each_of_seed_step_and_rank_changes_the_mixing(monkeypatch):
    triples = list(itertools.product((0, 1), (0, 1, 2), (0, 1)))  # (mix_seed, step, rank)
    masks = {t: mixed_at(monkeypatch, *t) for t in triples}
    for a, b in itertools.combinations(triples, 2):
        same_mix = torch.equal(masks[a].pixel_mask, masks[b].pixel_mask) and torch.equal(masks[a].partner,
                                                                                         masks[b].partner)
        assert not same_mix, f"(mix_seed, step, rank) {a} and {b} mixed the batch identically"


def test_the_same_seed_step_and_rank_mix_identically(monkeypatch):
    mix = [dict(type="maskmix", prob=0.5), dict(type="cutmix", prob=0.25), dict(type="mixup", prob=0.25)]
    for triple in ((0, 0, 0), (3, 5, 1), (1, 17, 2)):
        a, b = mixed_at(monkeypatch, *triple, mix=mix), mixed_at(monkeypatch, *triple, mix=mix)
        assert a.kind == b.kind and torch.equal(a.images, b.images) and torch.equal(a.partner, b.partner), triple


def test_consecutive_steps_of_one_model_mix_differently(monkeypatch):
    monkeypatch.setattr(mix_classifier, "get_rank", lambda *args, **kwargs: 0)
    model = tiny([dict(type="maskmix", prob=1.0)])
    seen = capture_batches(model)
    x, y = data()
    for _ in range(4):
        model(x, y, mode="loss")
    for a, b in itertools.combinations(seen, 2):
        assert not torch.equal(a.pixel_mask, b.pixel_mask)
    again = tiny([dict(type="maskmix", prob=1.0)])
    replay = capture_batches(again)
    at_step(again, 2)
    again(x, y, mode="loss")
    assert torch.equal(replay[0].images, seen[2].images), "step 2 is step 2, however the model got there"


def test_the_per_step_generators_draw_the_schedule_at_its_probabilities():
    """The first uniform of each step's generator picks the mixer: over 4000 consecutive steps the picks follow the
    schedule's uneven probabilities (5 binomial σ), so consecutive per-step seeds give independent-looking draws."""
    model = tiny([dict(type="maskmix", prob=0.6), dict(type="cutmix", prob=0.3), dict(type="mixup", prob=0.1)])
    n = 4000
    picks = []
    for step in range(n):
        model._step = step
        picks.append(model.method.mixer.choose(model._mix_generator()))
    for index, p in ((0, 0.6), (1, 0.3), (2, 0.1)):
        sigma = (p * (1 - p) / n) ** 0.5
        assert abs(picks.count(index) / n - p) < 5 * sigma, (index, picks.count(index) / n)


# ------------------------------------------------------------------------------------------------ attention labels
def peaked(model, factor=20.0):
    """Scale the last block's query and key projections: the CLS attention concentrates on a few tokens, chosen by
    the image content (at initialisation it is nearly uniform and λ_attn ≈ λ_area)."""
    attn = model.backbone.blocks[-1].attn
    dim = attn.qkv.in_features
    with torch.no_grad():
        attn.qkv.weight[:2 * dim] *= factor
        attn.qkv.bias[:2 * dim] *= factor
    return model


def spy_on_lambda(model):
    """Record the λ of every label call of ``model`` (``LabelResult.lam``)."""
    used = []
    policy = model.method.policy

    def recording(batch, logits, cls_attn, labels):
        result = policy(batch, logits, cls_attn, labels)
        used.append(result.lam.detach())
        return result

    model.method.policy = recording
    return used


def test_pal_labels_come_from_the_attention_of_the_mixed_batch():
    model = peaked(tiny([dict(type="maskmix", prob=1.0)], "PALLabels", heads=1))
    seen, used = capture_batches(model), spy_on_lambda(model)
    x, y = data(1)
    loss = model(x, y, mode="loss")["loss"]
    batch, lam = seen[0], used[0]
    with torch.no_grad():
        logits, attn_mixed = forward_with_attention(model.backbone, batch.images)
        _, attn_clean = forward_with_attention(model.backbone, x)
        expected = pal_lambda(batch, logits, attn_mixed, y, 10, smoothing=0.1)
        from_clean = pal_lambda(batch, logits, attn_clean, y, 10, smoothing=0.1)
    # the case can tell the bugs apart: PAL moves λ away from the area λ, and the clean attention moves it elsewhere
    assert (expected - batch.lam_area).abs().max() > 0.05
    assert (expected - from_clean).abs().max() > 0.05
    torch.testing.assert_close(lam, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, model.method.policy(batch, logits, attn_mixed, y).loss, rtol=0, atol=1e-5)


def test_transmix_labels_come_from_the_attention_of_the_mixed_batch():
    model = peaked(tiny([dict(type="cutmix", prob=1.0, alpha=1.0)], "TransMixLabels", heads=1))
    seen, used = capture_batches(model), spy_on_lambda(model)
    x, y = data(2)
    for _ in range(20):  # the first step whose box holds 20–80% of the image (an empty box would test nothing)
        loss = model(x, y, mode="loss")["loss"]
        if 0.2 < float(seen[-1].lam_area[0]) < 0.8:
            break
    batch, lam = seen[-1], used[-1]
    with torch.no_grad():
        logits, attn_mixed = forward_with_attention(model.backbone, batch.images)
        _, attn_clean = forward_with_attention(model.backbone, x)
    expected = transmix_lambda(batch, attn_mixed)
    assert batch.kind == "cutmix" and 0.2 < float(batch.lam_area[0]) < 0.8
    assert (expected - batch.lam_area).abs().max() > 0.05
    assert (expected - transmix_lambda(batch, attn_clean)).abs().max() > 0.05
    torch.testing.assert_close(lam, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, model.method.policy(batch, logits, attn_mixed, y).loss, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ non-finite guard
def other_rank_reports(finite_elsewhere: bool, calls: list):
    """An ``all_reduce`` standing in for a second rank whose finite flag is ``finite_elsewhere``."""
    reduce = {"min": torch.minimum, "max": torch.maximum, "sum": torch.add, "mean": lambda a, b: (a + b) / 2,
              "product": torch.mul}

    def all_reduce(tensor, op="sum", group=None):
        calls.append(op)
        tensor.copy_(reduce[op](tensor, torch.full_like(tensor, float(finite_elsewhere))))

    return all_reduce


@pytest.mark.parametrize("finite_elsewhere", [True, False])
def test_a_non_finite_loss_on_another_rank_stops_this_one(monkeypatch, finite_elsewhere):
    model = tiny([dict(type="maskmix", prob=1.0)])
    calls = []
    monkeypatch.setattr(optim_wrapper, "all_reduce", other_rank_reports(finite_elsewhere, calls))
    wrapper = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = data()
    if finite_elsewhere:
        log = model.train_step(dict(inputs=x, data_samples=y), wrapper)
        assert torch.isfinite(log["loss"]) and calls
        return
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        model.train_step(dict(inputs=x, data_samples=y), wrapper)
    assert calls, "the finite flag was never shared with the other ranks"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k != "mix_step"), "weights changed"


def test_a_non_finite_loss_here_stops_this_rank_whatever_the_others_report(monkeypatch):
    model = tiny([dict(type="maskmix", prob=1.0)])
    calls = []
    monkeypatch.setattr(optim_wrapper, "all_reduce", other_rank_reports(True, calls))
    wrapper = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    x, y = data()
    with wrapper.optim_context(model):
        losses = model(x, y, mode="loss")
    losses["loss"] = losses["loss"] * float("inf")
    loss, _ = model.parse_losses(losses)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        wrapper.update_params(loss)
    assert calls


def _update_on_rank(rank, store, model, results):
    """One gloo rank of the two: rank 0's loss is finite, rank 1's is NaN; write what the guarded update did."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        wrapper = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
        with wrapper.optim_context(model):
            loss = sum(p.sum() for p in model.parameters()) * 0.0 + (1.0 if rank == 0 else float("nan"))
        try:
            wrapper.update_params(loss)
            outcome = "continued"
        except FloatingPointError:
            outcome = "stopped"
        (results / str(rank)).write_text(outcome)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_ranks_stop_together_when_one_loss_is_not_finite(tmp_path):
    """The real collective (mmengine's all_reduce over gloo, forked ranks): the rank with the finite loss stops too."""
    import multiprocessing

    model = tiny([dict(type="maskmix", prob=1.0)])
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_update_on_rank, args=(rank, tmp_path / "store", model, tmp_path))
             for rank in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a rank was left waiting"
    assert [p.exitcode for p in procs] == [0, 0]
    assert [(tmp_path / str(rank)).read_text() for rank in (0, 1)] == ["stopped", "stopped"]

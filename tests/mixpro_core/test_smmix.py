"""SMMix (mixpro_core.smmix, docs/methods.md "SMMix"): the window search on planted attention maps against a brute
force, the moved window token for token, λ, the loss terms against an explicit computation, the clean pass's mode,
precision and gradient, and the region head as a trained, saved parameter of the classifier."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from timm.models.vision_transformer import VisionTransformer

import classification.register_all  # noqa: F401  (registration)
import mixpro_core.smmix as smmix
from mixpro_core import SMMix, smooth_one_hot
from mixpro_core.smmix import side_choices, smmix_images, window_search, window_tokens

K, S = 5, 0.1


def brute_force(scores, side, window):
    """(argmin, argmax) over every window of the row-major grid by explicit loops: (row, col) of the corner."""
    sums = {(r, c): float(scores.view(side, side)[r:r + window, c:c + window].sum())
            for r, c in itertools.product(range(side - window + 1), repeat=2)}
    return min(sums, key=sums.get), max(sums, key=sums.get)


@pytest.mark.parametrize("side,window,low,high", [(14, 3, (10, 2), (0, 11)), (14, 10, (4, 0), (0, 4)),
                                                   (4, 1, (3, 3), (0, 1)), (7, 2, (0, 0), (5, 5))])
def test_window_search_finds_the_planted_least_and_most_attended_windows(side, window, low, high):
    g = torch.Generator().manual_seed(side * 100 + window)
    scores = 0.5 + 0.1 * torch.rand(2, side * side, generator=g)
    grid = scores.view(2, side, side)
    grid[:, low[0]:low[0] + window, low[1]:low[1] + window] = 0.0
    grid[:, high[0]:high[0] + window, high[1]:high[1] + window] += 1.0
    lo, hi = window_search(scores, side, window)
    placements = side - window + 1
    for i in range(2):
        assert divmod(int(lo[i]), placements) == low == brute_force(scores[i], side, window)[0]
        assert divmod(int(hi[i]), placements) == high == brute_force(scores[i], side, window)[1]
    corner = high[0] * side + high[1]
    assert window_tokens(hi[:1], side, window).tolist() == [[corner + r * side + c for r in range(window)
                                                            for c in range(window)]]


def test_side_choices_are_the_official_ones_and_scale_to_small_grids():
    assert side_choices(14) == list(range(3, 11)) and side_choices(4) == [1, 2, 3] and side_choices(7) == [1, 2, 3, 4,
                                                                                                          5]


def test_the_partners_most_attended_window_moves_onto_the_least_attended_one_token_for_token():
    b, side, p = 4, 4, 2
    token_id = torch.arange(side * side).float()
    images = (torch.arange(b).float()[:, None] * 100 + token_id).view(b, 1, side, side)
    images = images.repeat_interleave(p, 2).repeat_interleave(p, 3)  # every token constant: 100·image + token
    scores = torch.rand(b, side * side, generator=torch.Generator().manual_seed(0))
    partner = torch.arange(b - 1, -1, -1)
    mixed, pasted = smmix_images(images, p, scores, 2, partner)
    lo, hi = window_search(scores, side, 2)
    tokens = mixed[:, 0, ::p, ::p].reshape(b, -1)
    for i in range(b):
        target, source = window_tokens(lo[i:i + 1], side, 2)[0], window_tokens(hi[partner[i]:partner[i] + 1], side, 2)[0]
        assert tokens[i, target].tolist() == (100 * partner[i] + source).float().tolist()
        rest = torch.ones(side * side, dtype=torch.bool)
        rest[target] = False
        assert tokens[i, rest].tolist() == (100 * i + token_id[rest]).tolist()
        assert pasted[i].nonzero().flatten().tolist() == sorted(target.tolist())
    assert torch.equal(mixed.view(b, 1, side, p, side, p).amax((3, 5)), mixed.view(b, 1, side, p, side, p).amin((3, 5)))


def vit():
    torch.manual_seed(0)
    model = VisionTransformer(img_size=16, patch_size=4, in_chans=3, num_classes=K, embed_dim=32, depth=2,
                              num_heads=4, mlp_ratio=2.0, drop_path_rate=0.1)  # drop path: train/eval differ
    with torch.no_grad():
        model.blocks[-1].attn.qkv.weight[:64] *= 20
    return model.train()


def explicit_received(model, images):
    """attn[:, :, 1:, 1:] of the last block, materialised, mean over heads and query patches (eval, no grad)."""
    seen = {}
    attn = model.blocks[-1].attn
    handle = attn.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    model.eval()
    with torch.no_grad():
        logits = model(images)
        x = seen["x"]
        b, t, c = x.shape
        q, k, _ = attn.qkv(x).reshape(b, t, 3, 4, c // 4).permute(2, 0, 3, 1, 4)
        a = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1)
    model.train()
    handle.remove()
    return logits, a[:, :, 1:, 1:].mean(dim=(1, 2))


def test_an_smmix_step_is_the_official_loss_with_lambda_exact(monkeypatch):
    model = vit()
    with torch.no_grad():
        model.head.weight *= 100  # logits that differ between images: mixing logits ≠ mixing probabilities
    method = SMMix(model, K, S, switch_prob=1.0, patch_size=4)
    seen = {}

    def spy(images, patch_size, scores, window, partner):
        out = smmix_images(images, patch_size, scores, window, partner)
        seen.update(scores=scores, window=window, mixed=out[0], pasted=out[1])
        return out

    monkeypatch.setattr(smmix, "smmix_images", spy)
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(6, 3, 16, 16, generator=g), torch.tensor([0, 1, 2, 3, 4, 0])
    result = method(model, images, labels, torch.Generator().manual_seed(2))
    assert model.training, "back in train mode after the clean pass"
    z, received = explicit_received(model, images)
    torch.testing.assert_close(seen["scores"], received, rtol=0, atol=1e-6)
    s = seen["window"]
    assert s in (1, 2, 3) and result.lam.tolist() == [(16 - s * s) / 16] * 6
    assert seen["pasted"].sum(1).tolist() == [s * s] * 6
    # the loss, term by term, from the mixed images; the model's drop path draws the same numbers from the same
    # global seed (the clean pass, in eval mode, draws none)
    flip = torch.arange(5, -1, -1)
    lam = (16 - s * s) / 16
    y = smooth_one_hot(labels, K, S)
    torch.manual_seed(7)
    result = method(model, images, labels, torch.Generator().manual_seed(2))
    torch.manual_seed(7)
    tokens = model.forward_features(seen["mixed"])
    logits = model.forward_head(tokens)
    patches = tokens[:, 1:]
    keep = (~seen["pasted"]).float()[..., None]
    f_t = method.token_head((patches * keep).sum(1) / keep.sum(1))
    f_s = method.token_head((patches * (1 - keep)).sum(1) / (1 - keep).sum(1))
    ce = lambda out, target: -(target * out.log_softmax(1)).sum(1).mean()  # noqa: E731
    kl = torch.nn.KLDivLoss(reduction="batchmean")(logits.log_softmax(1), (lam * z + (1 - lam) * z[flip]).softmax(1))
    expected = ce(logits, lam * y + (1 - lam) * y[flip]) + 0.5 * (ce(f_t, y) + ce(f_s, y[flip])) + kl
    torch.testing.assert_close(result.loss, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(result.stats["smmix_kl"], kl.detach(), rtol=0, atol=1e-5)
    mixed_probabilities = lam * z.softmax(1) + (1 - lam) * z[flip].softmax(1)
    assert (mixed_probabilities - (lam * z + (1 - lam) * z[flip]).softmax(1)).abs().max() > 0.05


def test_the_clean_pass_is_eval_mode_fp32_and_without_grad():
    model = vit()
    seen = []
    model.blocks[-1].attn.qkv.register_forward_hook(
        lambda m, i, out: seen.append((m.training, out.dtype, torch.is_grad_enabled())))
    method = SMMix(model, K, S, switch_prob=1.0, patch_size=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        method(model, torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]), torch.Generator().manual_seed(0))
    assert seen[0] == (False, torch.float32, False), "the clean pass"
    assert seen[1] == (True, torch.bfloat16, True), "the mixed pass"
    assert model.training


def test_the_mixup_branch_mixes_with_the_flipped_batch(monkeypatch):
    model = vit().eval()  # no drop path: two forwards agree
    monkeypatch.setattr(smmix, "sample_beta", lambda alpha, generator=None: 0.3)
    method = SMMix(model, K, S, switch_prob=0.0, patch_size=4)
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    result = method(model, images, labels, torch.Generator().manual_seed(0))
    y = smooth_one_hot(labels, K, S)
    logits = model(0.3 * images + 0.7 * images.flip(0))
    expected = F.cross_entropy(logits, 0.3 * y + 0.7 * y.flip(0))
    torch.testing.assert_close(result.loss, expected, rtol=0, atol=1e-5)
    assert result.lam.tolist() == pytest.approx([0.3] * 4) and result.stats == {}


def test_the_region_head_is_a_saved_trained_parameter_of_the_classifier():
    model = MODELS.build(dict(type="MixClassifier", num_classes=10, smoothing=0.1,
                              method=dict(type="smmix", switch_prob=1.0),
                              backbone=dict(type="tiny_vit", img_size=32, patch_size=8, in_chans=1, embed_dim=32,
                                            depth=2, num_heads=2)))
    state = model.state_dict()
    assert {"method.token_head.weight", "method.token_head.bias"} <= set(state)
    head = model.method.token_head
    assert any(p is head.weight for p in model.parameters()), "the optimiser sees it"
    out = model(torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]), mode="loss")
    assert set(out) == {"loss", "smmix_region", "smmix_kl"}
    out["loss"].backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert model.training


def test_backbones_without_what_smmix_needs_are_refused():
    pooled = VisionTransformer(img_size=16, patch_size=4, num_classes=K, embed_dim=32, depth=1, num_heads=4,
                               class_token=False, global_pool="avg")
    with pytest.raises(ValueError, match="one CLS token"):
        SMMix(pooled, K, patch_size=4)


def test_the_received_attention_is_the_same_in_query_chunks():
    """The clean pass builds the (B,H,N,T) rows in chunks of queries; one row at a time gives the same means."""
    from mixpro_core import received_attention_from_qkv
    qkv = torch.randn(2, 17, 3 * 32, generator=torch.Generator().manual_seed(0)) * 3
    whole = received_attention_from_qkv(qkv, 4, 0.35)
    torch.testing.assert_close(received_attention_from_qkv(qkv, 4, 0.35, max_elements=1), whole, rtol=0, atol=1e-6)
    q, k, _ = qkv.reshape(2, 17, 3, 4, 8).permute(2, 0, 3, 1, 4)
    explicit = ((q * 0.35) @ k.transpose(-2, -1)).softmax(-1)[:, :, 1:, 1:].mean(dim=(1, 2))
    torch.testing.assert_close(whole, explicit, rtol=0, atol=1e-6)

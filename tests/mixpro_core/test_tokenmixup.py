"""Pins TokenMixup (docs/methods.md, "TokenMixup"): HTM's assignment, masks, targets and batch order; VTM's extended
keys/values; the
controller's per-forward hooks (no state left behind, eval = the plain model)."""
import itertools

import pytest
import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

from mixpro_core import (TOKEN_MIXERS, AreaLabels, HorizontalTokenMixup, MixBatch, TokenMixup, VerticalTokenMixup,
                         build_token_mixup, horizontal_token_mixup, mixed_targets, no_mix, soft_target_cross_entropy)
from mixpro_core.tokenmixup import TokenMixupContext, assign_partners, block_saliency, saliency_from_qkv


def vit(class_token=True, depth=3, classes=5):
    torch.manual_seed(0)
    kw = dict(class_token=True) if class_token else dict(class_token=False, global_pool="avg")
    return VisionTransformer(img_size=16, patch_size=4, in_chans=1, num_classes=classes, embed_dim=16, depth=depth,
                             num_heads=2, mlp_ratio=2.0, qkv_bias=True, **kw)


def no_hooks_left(model):
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def block_io(model, index, x):
    """(input, output) of ``model.blocks[index]`` in one forward."""
    seen = {}
    h = model.blocks[index].register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    try:
        model(x)
    finally:
        h.remove()
    return seen["inp"], seen["out"]


# ------------------------------------------------------------------------------------------------- saliency
@pytest.mark.parametrize("prefix", [0, 1])
def test_saliency_from_qkv_matches_the_explicit_attention(prefix):
    torch.manual_seed(0)
    b, t, heads, d = 3, 7, 2, 4
    qkv = torch.randn(b, t, 3 * heads * d)
    q, k, _ = qkv.reshape(b, t, 3, heads, d).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) * 0.5).softmax(-1).mean(1)  # (B,T,T) head mean
    expected = attn[:, 0, 1:] if prefix else attn.mean(1)
    got = saliency_from_qkv(qkv, heads, 0.5, prefix, max_elements=5)  # tiny chunks: one query at a time
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("prefix", [0, 1])
def test_saliency_is_fp32_under_bf16_autocast(prefix):
    model = vit(class_token=bool(prefix))
    tokens = torch.randn(4, 16 + prefix, 16, generator=torch.Generator().manual_seed(1))
    reference = block_saliency(model.blocks[1], tokens, prefix)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = block_saliency(model.blocks[1], tokens, prefix)
        qkv = torch.randn(4, 16 + prefix, 48, generator=torch.Generator().manual_seed(2))
        from_qkv = saliency_from_qkv(qkv, 2, 0.5, prefix, max_elements=40)
    assert got.dtype == from_qkv.dtype == torch.float32
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(from_qkv, saliency_from_qkv(qkv, 2, 0.5, prefix, max_elements=40), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------- HTM core
def test_assignment_matches_brute_force():
    for seed in range(5):
        torch.manual_seed(seed)
        saliency = torch.rand(4, 6).softmax(1)
        rho = 0.01
        gain = (saliency[None] - saliency[:, None] - rho).clamp_min(0).sum(-1)  # gain[i, j]
        best = max(sum(float(gain[i, p[i]]) for i in range(4)) for p in itertools.permutations(range(4)))
        cols = assign_partners(gain)
        assert sorted(cols.tolist()) == [0, 1, 2, 3]
        assert sum(float(gain[i, cols[i]]) for i in range(4)) == pytest.approx(best)
        tokens = torch.randn(4, 7, 3)
        result = horizontal_token_mixup(tokens, torch.eye(4), saliency, torch.ones(4, dtype=torch.bool), rho)
        assert sum(float(gain[i, result.partner[i]]) for i in range(4)) == pytest.approx(best)


def test_mask_tokens_and_targets_follow_the_formulas():
    torch.manual_seed(1)
    b, n, c, rho = 5, 6, 3, 0.02
    saliency = torch.rand(b, n).softmax(1)
    tokens = torch.randn(b, n + 1, c)
    targets = torch.rand(b, 4).softmax(1)
    receivers = torch.tensor([True, False, True, True, False])
    r = horizontal_token_mixup(tokens, targets, saliency, receivers, rho, num_prefix_tokens=1)
    for i in range(b):
        j = int(r.partner[i])
        if not receivers[i]:
            assert j == i and not r.mask[i].any()
            assert torch.equal(r.tokens[i], tokens[i]) and torch.equal(r.targets[i], targets[i])
            continue
        mask = saliency[j] - saliency[i] - rho > 0
        assert torch.equal(r.mask[i], mask)
        assert torch.equal(r.tokens[i, 0], tokens[i, 0])  # the CLS token is never mixed
        expected_tokens = torch.where(mask[:, None], tokens[j, 1:], tokens[i, 1:])
        assert torch.equal(r.tokens[i, 1:], expected_tokens)
        a = (saliency[i] * ~mask).sum()
        bb = (saliency[j] * mask).sum()
        expected = a / (a + bb) * targets[i] + bb / (a + bb) * targets[j] if mask.any() else targets[i]
        torch.testing.assert_close(r.targets[i], expected)
    assert r.mixed.any() and torch.equal(r.mixed, r.mask.any(1))
    torch.testing.assert_close(r.targets.sum(1), torch.ones(b))


def test_donors_can_be_restricted_to_easy_samples():
    torch.manual_seed(2)
    saliency = torch.rand(6, 5).softmax(1)
    easy = torch.tensor([True, True, False, True, False, False])
    r = horizontal_token_mixup(torch.randn(6, 5, 2), torch.eye(6), saliency, easy, 0.0, num_prefix_tokens=0,
                               donors=easy)
    assert set(r.partner[easy].tolist()) <= {0, 1, 3}
    assert torch.equal(r.partner[~easy], torch.tensor([2, 4, 5]))


# ------------------------------------------------------------------------------------------------- HTM module
def scripted_scorenet(htm, easy_class):
    """ScoreNet that predicts ``easy_class`` with certainty: samples of that class are easy, all others hard."""
    with torch.no_grad():
        htm.fc.weight.zero_()
        htm.fc.bias.fill_(-20.0)
        htm.fc.bias[easy_class] = 20.0


@pytest.mark.parametrize("class_token", [True, False])
def test_htm_mixes_only_easy_samples_and_keeps_the_batch_order(class_token):
    model = vit(class_token).train()  # no dropout / drop path: train mode is deterministic
    prefix = 1 if class_token else 0
    tm = build_token_mixup(model, dict(type="htm", layer=1, tau=0.2, rho=0.0, lambda_sn=0.5), num_classes=5,
                           smoothing=0.0)
    htm = tm.horizontal[0]
    assert htm.pool == ("cls" if class_token else "attention") and htm.num_prefix_tokens == prefix
    scripted_scorenet(htm, easy_class=0)
    x = torch.randn(6, 1, 16, 16)
    labels = torch.tensor([0, 1, 0, 2, 0, 3])  # samples 0, 2, 4 are easy
    batch = no_mix(x)
    plain_logits = model(x)
    plain_in, _ = block_io(model, 1, x)
    seen = {}
    handle = model.blocks[1].register_forward_hook(lambda m, i, o: seen.update(inp=i[0]))
    with tm.feed(batch, labels) as context:
        logits = model(x)
    handle.remove()
    assert no_hooks_left(model)
    easy = labels == 0
    assert torch.equal(context.easy, easy)
    assert context.mixed.any() and not (context.mixed & ~easy).any()
    # hard samples: tokens entering the block, targets and logits are those of the plain model, in place
    assert torch.equal(seen["inp"][~easy], plain_in[~easy])
    torch.testing.assert_close(logits[~easy], plain_logits[~easy], atol=1e-6, rtol=0)
    start = torch.eye(5)[labels]
    assert torch.equal(context.targets[~easy], start[~easy])
    # mixed samples: own tokens or tokens of another sample's same position, targets still distributions
    assert torch.equal(seen["inp"][:, :prefix], plain_in[:, :prefix])
    changed = (seen["inp"] != plain_in).any(-1)
    assert changed[easy].any() and not changed[~easy].any()
    torch.testing.assert_close(context.targets.sum(1), torch.ones(6))
    assert not torch.equal(context.targets[easy], start[easy])
    # ScoreNet loss: λ_sn · mean soft CE against the targets entering the layer
    assert len(context.scorenet_losses) == 1 and context.scorenet_losses[0].requires_grad
    result = tm.result(context)
    assert result.targets is context.targets and result.scorenet.requires_grad
    torch.testing.assert_close(result.scorenet, context.scorenet_losses[0])
    assert float(result.mixed) == pytest.approx(float(context.mixed.float().mean())) and not result.mixed.requires_grad


def test_htm_is_the_plain_block_in_eval_mode_and_outside_feed():
    model = vit().eval()
    tm = build_token_mixup(model, dict(type="htm", layer=1, tau=10.0, rho=0.0), num_classes=5)
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    plain = model(x)
    with tm.feed(no_mix(x), labels) as context:
        out = model(x)
    assert torch.equal(out, plain) and context.mixed is None and not context.scorenet_losses
    model.train()
    assert torch.equal(model(x), plain)  # no hooks outside feed
    assert no_hooks_left(model)


def test_htm_targets_start_from_the_area_targets_of_the_image_mixed_batch():
    model = vit().train()
    tm = build_token_mixup(model, dict(type="htm", layer=0, tau=-1.0), num_classes=5, smoothing=0.1)  # none easy
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    batch = MixBatch(x, torch.tensor([1, 0, 3, 2]), torch.tensor([0.7, 0.6, 0.5, 0.4]), None, None, "mixup")
    with tm.feed(batch, labels) as context:
        logits = model(x)
    expected = mixed_targets(labels, batch.partner, batch.lam_area, 5, 0.1)
    assert torch.equal(context.targets, expected) and not context.mixed.any()
    result = tm.result(context)
    area = AreaLabels(5, 0.1)(batch, logits, None, labels).loss
    torch.testing.assert_close(soft_target_cross_entropy(logits, result.targets), area)
    torch.testing.assert_close(result.scorenet, context.scorenet_losses[0])


# ------------------------------------------------------------------------------------------------- VTM
def manual_vtm_block(model, layer, kappa, block_inputs):
    """Block ``layer`` with the top-κ input tokens of every lower block appended to its keys/values, by hand."""
    kept = []
    for index in range(layer):
        blk, x = model.blocks[index], block_inputs[index]
        qkv = blk.attn.qkv(blk.norm1(x))
        sal = saliency_from_qkv(qkv, blk.attn.num_heads, blk.attn.scale, 1)
        top = sal.topk(kappa, dim=1).indices
        kept.append(x[:, 1:].gather(1, top[..., None].expand(-1, -1, x.shape[-1])))
    blk, x = model.blocks[layer], block_inputs[layer]
    attn = blk.attn
    b, n, c = x.shape
    full = blk.norm1(torch.cat([x] + kept, 1))
    q, k, v = attn.qkv(full).reshape(b, full.shape[1], 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
    weights = (q[:, :, :n] @ k.transpose(-2, -1) * attn.scale).softmax(-1)
    out = attn.proj((weights @ v).transpose(1, 2).reshape(b, n, c))
    y = x + out
    return y + blk.mlp(blk.norm2(y))


def test_vtm_appends_salient_lower_tokens_to_the_keys_and_values():
    model = vit(depth=3).train()
    tm = build_token_mixup(model, dict(type="vtm", layer=2, kappa=3), num_classes=5)
    x = torch.randn(4, 1, 16, 16)
    inputs = [block_io(model, i, x)[0] for i in range(3)]  # block inputs below and at the layer: unchanged by VTM
    plain_out = block_io(model, 2, x)[1]
    with tm.feed(no_mix(x), torch.tensor([0, 1, 2, 3])) as context:
        vtm_in, vtm_out = block_io(model, 2, x)
    assert sorted(context.vertical_tokens) == [0, 1] and context.vertical_tokens[0].shape == (4, 3, 16)
    assert torch.equal(vtm_in, inputs[2])
    assert vtm_out.shape == plain_out.shape and not torch.allclose(vtm_out, plain_out)
    torch.testing.assert_close(vtm_out, manual_vtm_block(model, 2, 3, inputs), atol=1e-5, rtol=1e-5)
    assert no_hooks_left(model)


def test_vtm_eval_is_the_plain_model_exactly():
    model = vit(depth=3)
    reference = vit(depth=3)
    reference.load_state_dict(model.state_dict())
    tm = build_token_mixup(model, [dict(type="vtm", layer=2, kappa=3), dict(type="htm", layer=1, tau=10.0)],
                           num_classes=5)
    model.eval()
    reference.eval()
    x = torch.randn(3, 1, 16, 16)
    with tm.feed(no_mix(x), torch.tensor([0, 1, 2])) as context:
        out = model(x)
    assert torch.equal(out, reference(x)) and not context.vertical_tokens
    assert list(model.state_dict()) == list(reference.state_dict())  # the backbone's own parameter names


def test_vtm_without_cls_token_and_gradients_reach_the_kept_tokens():
    model = vit(class_token=False, depth=3).train()
    tm = build_token_mixup(model, dict(type="vtm", layer=1, kappa=4), num_classes=5)
    x = torch.randn(2, 1, 16, 16)
    with tm.feed(no_mix(x), torch.tensor([0, 1])) as context:
        out = model(x)
    assert out.shape == (2, 5) and context.vertical_tokens[0].requires_grad
    out.sum().backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None


# ------------------------------------------------------------------------------------------------- controller
def test_off_switch_and_config_errors():
    model = vit()
    off = build_token_mixup(model, None, num_classes=5)
    assert not off.active
    x, labels = torch.randn(2, 1, 16, 16), torch.tensor([0, 1])
    plain = model(x)
    with off.feed(no_mix(x), labels) as context:
        assert torch.equal(model(x), plain)
    assert context.targets is None and off.result(context) is None  # the label policy's loss holds
    with pytest.raises(ValueError, match="layer must be a block index"):
        build_token_mixup(model, dict(type="htm", layer=3), 5)
    with pytest.raises(ValueError, match=r"token_mixup type must be one of \['htm', 'vtm'\], got 'xtm'"):
        build_token_mixup(model, dict(type="xtm", layer=1), 5)
    assert TOKEN_MIXERS.get("htm") is HorizontalTokenMixup and TOKEN_MIXERS.get("vtm") is VerticalTokenMixup
    with pytest.raises(ValueError, match=r"token_mixup \(htm\): unknown key\(s\) \['tua'\]"):
        build_token_mixup(model, dict(type="htm", layer=1, tua=0.2), 5)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['block'\]"):  # filled by the builder, not the config
        build_token_mixup(model, dict(type="htm", layer=1, block=None), 5)
    with pytest.raises(ValueError, match="VTM layer"):
        build_token_mixup(model, dict(type="vtm", layer=0, kappa=2), 5)
    with pytest.raises(ValueError, match="needs a CLS token"):
        HorizontalTokenMixup(model.blocks[0], 16, 5, pool="cls", num_prefix_tokens=0)
    with pytest.raises(ValueError, match="sequence of transformer `blocks`"):
        build_token_mixup(nn.Linear(2, 2), dict(type="htm", layer=0), 5)
    with pytest.raises(ValueError, match="soft targets"):
        HorizontalTokenMixup(model.blocks[0], 16, 5).mix(torch.randn(2, 17, 16), TokenMixupContext())


def test_contexts_are_per_forward():
    model = vit(depth=3).train()
    tm = TokenMixup(vertical=[VerticalTokenMixup(model.blocks, 1, 2)], num_classes=5)
    x = torch.randn(2, 1, 16, 16)
    with tm.feed(no_mix(x), torch.tensor([0, 1])) as first:
        model(x)
    with tm.feed(no_mix(x[:1].repeat(3, 1, 1, 1)), torch.tensor([0, 1, 2])) as second:
        model(x[:1].repeat(3, 1, 1, 1))
    assert first.vertical_tokens[0].shape[0] == 2 and second.vertical_tokens[0].shape[0] == 3

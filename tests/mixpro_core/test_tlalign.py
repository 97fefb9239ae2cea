"""TL-Align (mixpro_core.tlalign, docs/methods.md "TL-Align"): the token-grid CutMix by hand, and the fused one-channel
label propagation against the explicit K-dimensional one (materialised attention, full label vectors)."""
import pytest
import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

import mixpro_core.tlalign as tlalign
from mixpro_core import MIXERS, METHODS, smooth_one_hot, soft_target_cross_entropy
from mixpro_core.tlalign import TLAlign, forward_with_token_labels, token_grid_cutmix

K, S = 5, 0.1


def vit(depth=3, attn_drop=0.0, peak=40.0):
    """A tiny timm ViT (16×16 images, patch 4: 16 tokens + CLS) whose attention is far from uniform."""
    torch.manual_seed(0)
    model = VisionTransformer(img_size=16, patch_size=4, in_chans=3, num_classes=K, embed_dim=32, depth=depth,
                              num_heads=4, mlp_ratio=2.0, attn_drop_rate=attn_drop, drop_path_rate=0.0)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[:64] *= peak  # queries and keys: peaked attention
    return model


@pytest.mark.parametrize("centre,box,lam", [((4, 4), (2, 6, 2, 6), 0.75), ((0, 7), (0, 2, 5, 8), 1 - 6 / 64)])
def test_token_grid_cutmix_by_hand(monkeypatch, centre, box, lam):
    """λ0 = 0.75 on an 8×8 grid: sides ⌊8·√0.25⌋ = 4 around the centre, clipped; λ = 1 − box tokens / 64."""
    monkeypatch.setattr(tlalign, "sample_beta", lambda alpha, generator=None: 0.75)
    draws = iter(centre)
    monkeypatch.setattr(tlalign, "_randint", lambda high, generator=None: next(draws))
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 16, 16).contiguous()  # image i is constant i
    batch = token_grid_cutmix(images, patch_size=2)
    y0, y1, x0, x1 = box
    expected = torch.ones(8, 8)
    expected[y0:y1, x0:x1] = 0
    assert torch.equal(batch.partner, torch.tensor([3, 2, 1, 0]))
    assert torch.equal(batch.token_mask, expected.flatten().expand(4, 64))
    assert batch.lam_area.tolist() == [lam] * 4 and batch.token_exact
    own = expected.repeat_interleave(2, 0).repeat_interleave(2, 1).bool()
    for i in range(4):
        assert torch.equal(batch.images[i, :, own], torch.full((2, int(own.sum())), float(i)))
        assert torch.equal(batch.images[i, :, ~own], torch.full((2, int((~own).sum())), float(3 - i)))


def test_lambda_is_redrawn_while_it_is_one(monkeypatch):
    draws = iter([1.0, 1.0, 0.75])
    monkeypatch.setattr(tlalign, "sample_beta", lambda alpha, generator=None: next(draws))
    monkeypatch.setattr(tlalign, "_randint", lambda high, generator=None: 4)
    assert token_grid_cutmix(torch.zeros(2, 1, 16, 16), patch_size=2).lam_area.tolist() == [0.75, 0.75]


def explicit_propagation(model, images, labels, partner, rho0):
    """The official computation: full label vectors Y (B,T,K) = ρ·ŷ + (1−ρ)·ŷ[partner], and in every block
    Y ← (Ā·Y + Y)/2 with Ā = mean over heads of the materialised softmax(q·kᵀ·scale) of the block's input."""
    y = smooth_one_hot(labels, K, S)
    state = {"Y": rho0[..., None] * y[:, None] + (1 - rho0[..., None]) * y[partner][:, None]}

    def propagate(attn, args):
        x = args[0]
        b, t, c = x.shape
        q, k, _ = attn.qkv(x).reshape(b, t, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
        a = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1).mean(1).detach()
        state["Y"] = (a @ state["Y"] + state["Y"]) / 2

    handles = [b.attn.register_forward_pre_hook(propagate) for b in model.blocks]
    logits = model(images)
    for h in handles:
        h.remove()
    return logits, state["Y"]


def test_fused_label_channel_equals_the_explicit_k_dimensional_propagation():
    model = vit()
    g = torch.Generator().manual_seed(3)
    images, labels = torch.randn(6, 3, 16, 16, generator=g), torch.tensor([0, 1, 2, 3, 4, 0])
    batch = token_grid_cutmix(images, 4, generator=g)
    rho0 = torch.cat([batch.lam_area[:, None], batch.token_mask], 1)
    logits, rho = forward_with_token_labels(model, batch.images, rho0)
    slow_logits, slow_y = explicit_propagation(model, batch.images, labels, batch.partner, rho0)
    y = smooth_one_hot(labels, K, S)
    fused_y = rho[..., None] * y[:, None] + (1 - rho[..., None]) * y[batch.partner][:, None]
    torch.testing.assert_close(fused_y, slow_y, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, slow_logits, rtol=0, atol=1e-5)
    # the case can tell a wrong propagation apart: the CLS ratio moved far from λ, and not to a plain average
    assert (rho[:, 0] - batch.lam_area).abs().max() > 0.05 and (rho - rho0).abs().max() > 0.3
    assert "forward" not in model.blocks[0].attn.__dict__, "the attention's own forward is restored"


def test_the_method_step_is_soft_ce_against_the_propagated_cls_label_with_the_plain_gradient():
    model = vit()
    method = METHODS.get("tlalign")(model, K, S, alpha=1.0, patch_size=4)
    g = torch.Generator().manual_seed(5)
    images, labels = torch.randn(6, 3, 16, 16, generator=g), torch.tensor([4, 3, 2, 1, 0, 1])
    result = method(model, images, labels, torch.Generator().manual_seed(9))
    result.loss.backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    batch = token_grid_cutmix(images, 4, generator=torch.Generator().manual_seed(9))
    rho0 = torch.cat([batch.lam_area[:, None], batch.token_mask], 1)
    logits, slow_y = explicit_propagation(model, batch.images, labels, batch.partner, rho0)
    loss = soft_target_cross_entropy(logits, slow_y[:, 0])
    loss.backward()
    torch.testing.assert_close(result.loss, loss, rtol=0, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fused[name], p.grad, rtol=1e-4, atol=1e-4, msg=name)  # fp32 kernels differ
    y = smooth_one_hot(labels, K, S)
    torch.testing.assert_close(result.lam[:, None] * y + (1 - result.lam[:, None]) * y[batch.partner], slow_y[:, 0],
                               rtol=0, atol=1e-6)
    assert float(result.stats["lam_gap"]) == pytest.approx(float((result.lam - batch.lam_area).abs().mean()))


def test_backbones_it_cannot_align_are_refused():
    with pytest.raises(ValueError, match="attention dropout"):
        TLAlign(vit(attn_drop=0.1), K, patch_size=4)
    with pytest.raises(ValueError, match="timm ViT/DeiT blocks"):
        TLAlign(nn.Sequential(nn.Conv2d(3, 4, 3)), K, patch_size=4)
    pooled = VisionTransformer(img_size=16, patch_size=4, num_classes=K, embed_dim=32, depth=1, num_heads=4,
                               global_pool="avg")
    with pytest.raises(ValueError, match="one CLS token"):
        TLAlign(pooled, K, patch_size=4)
    with pytest.raises(ValueError, match="grad_checkpointing"):
        TLAlign(vit(), K, patch_size=4, grad_checkpointing=True)
    assert "tlalign" not in MIXERS  # a method, not a mixer of the schedule


def test_the_attention_is_restored_when_the_forward_fails():
    model = vit(depth=1)
    with pytest.raises(RuntimeError):
        forward_with_token_labels(model, torch.randn(2, 3, 16, 16), torch.ones(2, 5))  # ρ of 5 tokens, not 17
    assert "forward" not in model.blocks[0].attn.__dict__

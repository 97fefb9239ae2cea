"""forward_with_attention: same logits, CLS-row attention equal to the materialised attention, model untouched."""
import pytest
import timm
import torch
import torch.nn as nn

from mixpro_core import (ATTENTION_FORWARDS, attention_key, cls_row_attention, forward_with_attention,
                         has_cls_attention)


def slow_last_block_cls_attention(model, x):
    """Materialise softmax(QKᵀ·scale) of the last block the unfused way; return the head-mean CLS→patch row."""
    attn = model.blocks[-1].attn
    seen = {}
    handle = attn.register_forward_pre_hook(lambda m, inp: seen.setdefault("x", inp[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    h = seen["x"]
    b, n, c = h.shape
    qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    full = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B,H,N,N)
    return full[:, :, 0, model.num_prefix_tokens:].mean(1)


@pytest.mark.parametrize("train_mode", [False, True])
def test_deit_tiny_cls_attention_matches_slow_path(train_mode):
    torch.manual_seed(0)
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False)
    model.train(train_mode)
    x = torch.randn(2, 3, 224, 224)
    expected = slow_last_block_cls_attention(model, x)
    with torch.no_grad():
        plain = model(x)
    logits, cls_attn = forward_with_attention(model, x)
    assert cls_attn.shape == (2, 196) and not cls_attn.requires_grad
    torch.testing.assert_close(cls_attn, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits.detach(), plain, atol=1e-5, rtol=1e-5)
    # fused attention stayed on everywhere and no hook was left behind
    assert all(blk.attn.fused_attn for blk in model.blocks)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_logits_keep_their_gradient():
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, pretrained=False)
    logits, cls_attn = forward_with_attention(model, torch.randn(2, 3, 32, 32))
    assert logits.requires_grad and not cls_attn.requires_grad and cls_attn.shape == (2, 4)
    assert has_cls_attention(model)


def test_model_without_cls_token_returns_none():
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, class_token=False, global_pool="avg",
                              pretrained=False)
    logits, cls_attn = forward_with_attention(model, torch.randn(2, 3, 32, 32))
    assert cls_attn is None and logits.shape == (2, 1000)
    assert not has_cls_attention(model)


def test_registered_family_and_own_method_take_precedence():
    class Family(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    class Own(Family):
        def forward_with_attention(self, x):
            return self(x), torch.zeros(x.shape[0], 3)

    @ATTENTION_FORWARDS.register(attention_key(Family))
    def family_forward(model, x):
        return model(x), torch.ones(x.shape[0], 5)

    class Member(Family):
        pass

    x = torch.randn(2, 3, 4, 4)
    assert forward_with_attention(Family(), x)[1].shape == (2, 5)
    assert forward_with_attention(Member(), x)[1].shape == (2, 5)
    assert forward_with_attention(Own(), x)[1].shape == (2, 3)
    with pytest.raises(TypeError, match="not a ViT-like model"):
        forward_with_attention(nn.Linear(3, 3), x)


def test_cls_row_attention_is_head_mean_softmax():
    q = torch.randn(2, 3, 8)
    k = torch.randn(2, 3, 5, 8)
    expected = torch.softmax((q.unsqueeze(2) @ k.transpose(-2, -1)).squeeze(2) * 0.5, -1).mean(1)
    torch.testing.assert_close(cls_row_attention(q, k, 0.5), expected)


def test_bf16_cls_attention_matches_a_peaked_fp32_reference():
    """Under bf16 autocast the CLS row stays within 0.01 of the fp32 materialised attention. The last block's
    queries and keys are scaled so that the attention is peaked: a uniform row (what an untrained model nearly
    gives, and what a broken path could return) misses the reference by far more than the tolerance."""
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", img_size=64, depth=2, pretrained=False).eval()
    attn = model.blocks[-1].attn
    dim = attn.qkv.in_features
    with torch.no_grad():
        attn.qkv.weight[:2 * dim] *= 6.0
        attn.qkv.bias[:2 * dim] *= 6.0
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    reference = slow_last_block_cls_attention(model, x)  # fp32, unfused
    uniform = reference.sum(1, keepdim=True) / reference.shape[1]
    assert (reference - uniform).abs().max() > 0.2 and reference.max(1).values.min() > 0.15, "not peaked"
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, cls_attn = forward_with_attention(model, x)
    assert cls_attn.dtype == torch.float32
    torch.testing.assert_close(cls_attn, reference, rtol=0, atol=1e-2)

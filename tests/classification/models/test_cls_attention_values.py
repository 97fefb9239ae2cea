"""CLS attention and logits of every classifier family with a CLS token, as values against a slow explicit
computation (docs/methods.md, "PAL"): DeiT/ViT (timm, the default qkv-hook path), CaiT, XCiT, CA-Swin (class-attention
hooks) and PVT (its own ``forward_with_attention``).

Each family is built tiny on a non-square input, so its last token grid is H×W with H ≠ W, and checked three ways:
  1. the map equals a per-head, per-token loop over the last attention's input (softmax of q_cls·k_t·scale,
     head-averaged, CLS column dropped);
  2. orientation: a peak planted at grid cell (r, c) of the family's last *spatial* feature map (before any
     flattening of ours or timm's) shows up at r·W + c — the last attention is rewired to score tokens by their
     channel 0 only, and the planted value survives the pre-norm residual blocks after it;
  3. the logits equal head(norm(CLS)) written out by hand, with non-trivial final-norm weights.
A transposed flatten, a wrong prefix drop, a norm on the wrong side of the class attention or a head on another
token fails one of them for every family that has it.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from timm.models.cait import Cait
from timm.models.vision_transformer import VisionTransformer
from timm.models.xcit import Xcit

import classification.register_all  # noqa: F401  (registration)
from classification.models.ca_swin import CASwinTransformer
from classification.models.pvt import PyramidVisionTransformerV1
from classification.models.vits import tiny_vit
from mixpro_core import forward_with_attention, has_cls_attention, token_stride


def _vit():
    return VisionTransformer(img_size=(32, 48), patch_size=8, in_chans=3, num_classes=5, embed_dim=32, depth=2,
                             num_heads=2, mlp_ratio=2.0, qkv_bias=True)


def _vit_qk_norm():
    return VisionTransformer(img_size=(32, 48), patch_size=8, in_chans=3, num_classes=5, embed_dim=32, depth=2,
                             num_heads=2, mlp_ratio=2.0, qkv_bias=True, qk_norm=True)


def _cait():
    return Cait(img_size=(32, 48), patch_size=8, num_classes=5, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                depth_token_only=2)


def _xcit():
    return Xcit(img_size=(48, 64), patch_size=16, num_classes=5, embed_dim=32, depth=1, num_heads=2,
                cls_attn_layers=2)


def _ca_swin():
    return CASwinTransformer(img_size=(64, 96), embed_dim=16, depths=(1, 1, 1, 2), num_heads=(1, 1, 2, 2),
                             window_size=2, num_classes=5, class_attn_depth=1)


def _pvt():
    return PyramidVisionTransformerV1(img_size=(64, 96), num_classes=5, embed_dims=(8, 16, 16, 32),
                                      num_heads=(1, 1, 1, 2), mlp_ratios=(2, 2, 2, 2), sr_ratios=(2, 2, 2, 1),
                                      depths=(1, 1, 1, 2))


def _split_qk(w, b, c):
    return w[:c], b[:c], w[c:2 * c], b[c:2 * c]


# family → (builder, image (H,W), token grid (H,W), spatial module: (model → module, layout of its output),
#           last attention, its (Wq, bq, Wk, bk) as views, the module whose output holds the final CLS and the
#           CLS from that output, final norm, head linear)
FAMILIES = {
    "vit": dict(build=_vit, image=(32, 48), grid=(4, 6), spatial=(lambda m: m.patch_embed.proj, "nchw"),
                attn=lambda m: m.blocks[-1].attn,
                qk=lambda a: _split_qk(a.qkv.weight, a.qkv.bias, a.qkv.in_features),
                cls_from=(lambda m: m.blocks[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                head=lambda m: m.head),
    "vit_qk_norm": dict(build=_vit_qk_norm, image=(32, 48), grid=(4, 6),
                        spatial=(lambda m: m.patch_embed.proj, "nchw"), attn=lambda m: m.blocks[-1].attn,
                        qk=lambda a: _split_qk(a.qkv.weight, a.qkv.bias, a.qkv.in_features),
                        cls_from=(lambda m: m.blocks[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                        head=lambda m: m.head),
    "cait": dict(build=_cait, image=(32, 48), grid=(4, 6), spatial=(lambda m: m.patch_embed.proj, "nchw"),
                 attn=lambda m: m.blocks_token_only[-1].attn,
                 qk=lambda a: (a.q.weight, a.q.bias, a.k.weight, a.k.bias),
                 cls_from=(lambda m: m.blocks_token_only[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                 head=lambda m: m.head),
    "xcit": dict(build=_xcit, image=(48, 64), grid=(3, 4), spatial=(lambda m: m.patch_embed.proj, "nchw"),
                 attn=lambda m: m.cls_attn_blocks[-1].attn,
                 qk=lambda a: (a.q.weight, a.q.bias, a.k.weight, a.k.bias),
                 cls_from=(lambda m: m.cls_attn_blocks[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                 head=lambda m: m.head),
    "ca_swin": dict(build=_ca_swin, image=(64, 96), grid=(2, 3), spatial=(lambda m: m.layers, "nhwc"),
                    attn=lambda m: m.blocks_token_only[-1].attn,
                    qk=lambda a: (a.q.weight, a.q.bias, a.k.weight, a.k.bias),
                    cls_from=(lambda m: m.blocks_token_only[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                    head=lambda m: m.head.fc),
    "pvt": dict(build=_pvt, image=(64, 96), grid=(2, 3), spatial=(lambda m: m.patch_embed4.proj, "nchw"),
                attn=lambda m: m.block4[-1].attn,
                qk=lambda a: (a.q.weight, a.q.bias, a.kv.weight[:a.q.out_features], a.kv.bias[:a.q.out_features]),
                cls_from=(lambda m: m.block4[-1], lambda out: out[:, 0]), norm=lambda m: m.norm,
                head=lambda m: m.head),
}


def _model(family: str):
    """The family's tiny model in eval mode, with non-trivial weights on every LayerNorm (so a norm applied on the
    wrong side, or skipped, changes values)."""
    torch.manual_seed(0)
    model = FAMILIES[family]["build"]().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm) and mod.elementwise_affine:
                mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=gen))
    return model


def _images(family: str, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, *FAMILIES[family]["image"], generator=torch.Generator().manual_seed(2))


def _attention_input(model, family: str, images: torch.Tensor) -> torch.Tensor:
    """The (B, 1 + N, C) tokens the last attention module receives (CLS first, already normed)."""
    seen = {}
    handle = FAMILIES[family]["attn"](model).register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return seen["x"]


def _layer_norm(v: torch.Tensor, norm) -> torch.Tensor:
    """A LayerNorm written out on one vector (identity for ``nn.Identity``)."""
    if not isinstance(norm, torch.nn.LayerNorm):
        return v
    centred = v - v.mean()
    weight, bias = norm.weight.detach().double(), norm.bias.detach().double()
    return centred / torch.sqrt((centred ** 2).mean() + norm.eps) * weight + bias


def slow_cls_attention(x: torch.Tensor, wq, bq, wk, bk, num_heads: int, scale: float, q_norm=None,
                       k_norm=None) -> torch.Tensor:
    """x (B,T,C), token 0 the CLS → (B, T−1): mean over heads of softmax_t(q_cls,h · k_t,h · scale), CLS column
    dropped; head h owns channels h·D..(h+1)·D of q and k, ``q_norm`` / ``k_norm`` (timm's qk_norm) act on each
    head's D channels. Plain loops, no reshape/permute/einsum."""
    b, t, c = x.shape
    d = c // num_heads
    out = torch.zeros(b, t - 1, dtype=torch.float64)
    x, wq, bq, wk, bk = (v.detach().double() for v in (x, wq, bq, wk, bk))
    for i in range(b):
        for h in range(num_heads):
            rows = slice(h * d, (h + 1) * d)
            q = _layer_norm(wq[rows] @ x[i, 0] + bq[rows], q_norm)
            logits = [float(q @ _layer_norm(wk[rows] @ x[i, j] + bk[rows], k_norm)) * scale for j in range(t)]
            top = max(logits)
            weights = [math.exp(v - top) for v in logits]
            total = sum(weights)
            for j in range(1, t):
                out[i, j - 1] += weights[j] / total / num_heads
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cls_attention_equals_a_slow_explicit_computation(family):
    model, images = _model(family), _images(family)
    spec = FAMILIES[family]
    assert has_cls_attention(model)
    _, cls_attn = forward_with_attention(model, images)
    attn = spec["attn"](model)
    x = _attention_input(model, family, images)
    expected = slow_cls_attention(x, *spec["qk"](attn), attn.num_heads, attn.scale, getattr(attn, "q_norm", None),
                                  getattr(attn, "k_norm", None))
    h, w = spec["grid"]
    assert cls_attn.shape == (2, h * w)
    torch.testing.assert_close(cls_attn.double(), expected, atol=1e-5, rtol=1e-4)


def _rewire_to_channel_0(attn, spec, strength: float) -> None:
    """Last attention scores token t by channel 0 of its normed input only: q = 1 (weights 0, bias 1), every k
    channel = strength · x_t[0]."""
    wq, bq, wk, bk = spec["qk"](attn)
    with torch.no_grad():
        wq.zero_(), bq.fill_(1.0), wk.zero_(), bk.zero_()
        wk[:, 0] = strength


# vit_qk_norm shares vit's geometry; its per-head norms would undo the rewiring (a constant q normalises to 0)
@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"vit_qk_norm"}))
def test_a_peak_planted_at_grid_cell_r_c_appears_at_r_times_w_plus_c(family):
    model, images = _model(family), _images(family, batch=1)
    spec = FAMILIES[family]
    attn = spec["attn"](model)
    head_dim = spec["qk"](attn)[0].shape[1] // attn.num_heads
    _rewire_to_channel_0(attn, spec, strength=4.0 / (attn.scale * head_dim))  # logit 4 per unit of channel 0
    h, w = spec["grid"]
    module, layout = spec["spatial"]
    for r, c in [(0, w - 1), (h - 1, 0), (h - 1, w - 2), (1, 1)]:
        def plant(_m, _inputs, out, r=r, c=c):
            out = out.clone()
            if layout == "nchw":
                assert out.shape[-2:] == (h, w)
                out[:, 0, r, c] += 1e4
            else:
                assert out.shape[1:3] == (h, w)
                out[:, r, c, 0] += 1e4
            return out

        handle = module(model).register_forward_hook(plant)
        try:
            with torch.no_grad():
                _, cls_attn = forward_with_attention(model, images)
        finally:
            handle.remove()
        assert int(cls_attn[0].argmax()) == r * w + c, (family, r, c)
        assert float(cls_attn[0, r * w + c]) > 0.5, (family, r, c)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logits_are_the_head_of_the_normed_final_cls(family):
    model, images = _model(family), _images(family)
    spec = FAMILIES[family]
    source, take_cls = spec["cls_from"]
    seen = {}
    handle = source(model).register_forward_hook(lambda m, i, out: seen.__setitem__("out", out))
    try:
        with torch.no_grad():
            logits, _ = forward_with_attention(model, images)
    finally:
        handle.remove()
    out = seen["out"]
    cls = take_cls(out[0] if isinstance(out, tuple) else out).double()  # PVT's last block also returns (q, k)
    norm, head = spec["norm"](model), spec["head"](model)
    mean = cls.mean(-1, keepdim=True)
    var = ((cls - mean) ** 2).mean(-1, keepdim=True)
    normed = (cls - mean) / torch.sqrt(var + norm.eps) * norm.weight.double() + norm.bias.double()
    expected = normed @ head.weight.double().T + head.bias.double()
    torch.testing.assert_close(logits.double(), expected, atol=1e-5, rtol=1e-4)


def test_a_model_that_is_not_vit_like_is_refused_naming_its_class():
    class NoAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

    class NoQkv(NoAttention):
        def __init__(self):
            super().__init__()
            self.blocks[-1].attn = torch.nn.Linear(2, 2)

    for model in (NoAttention(), NoQkv()):
        with pytest.raises(TypeError, match=rf"^{type(model).__name__} is not a ViT-like model"):
            forward_with_attention(model, torch.zeros(1, 2))


def test_the_registered_tiny_vit_is_the_timm_path_checked_above():
    """tiny_vit (the embedded-data classifier) and the DeiTs are timm VisionTransformers: the "vit" rows cover them."""
    model = tiny_vit(img_size=28, patch_size=4, in_chans=1)
    assert isinstance(model, VisionTransformer) and has_cls_attention(model)
    assert token_stride(model) == 4


def test_cls_attention_from_qkv_drops_one_prefix_token_by_default():
    """The public helper with its defaults: one prefix token (the CLS) dropped, no q/k norms."""
    from mixpro_core import cls_attention_from_qkv

    torch.manual_seed(0)
    qkv = torch.randn(2, 7, 3 * 2 * 4)
    wq = torch.eye(8)
    expected = slow_cls_attention(qkv[..., :8], wq, torch.zeros(8), wq, torch.zeros(8), 2, 0.5)  # q, k = x
    x = torch.cat([qkv[..., :8], qkv[..., :8], qkv[..., 16:]], -1)  # k := q's values, so q·k is checkable
    torch.testing.assert_close(cls_attention_from_qkv(x, 2, 0.5).double(), expected, atol=1e-6, rtol=1e-5)

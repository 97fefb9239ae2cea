"""PVT v1 classifier: shapes, paper parameter counts, CLS attention, SMMix's clean pass, mmdet weight transfer, grad
checkpointing."""
import pytest
import torch
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
import mixpro_core.smmix as smmix
from classification.models.pvt import PyramidVisionTransformerV1, pvt_large, pvt_medium, pvt_small, pvt_tiny
from mixpro_core import forward_with_attention, has_cls_attention
from mixpro_core.smmix import clean_pass, smmix_images


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return pvt_tiny(num_classes=10, **kw)


def test_forward_shapes_and_contract():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 10)
    assert model(torch.randn(1, 3, 96, 64)).shape == (1, 10)  # non-square: pos embeds interpolated
    assert model.token_stride == 32 and has_cls_attention(model) and isinstance(model, PyramidVisionTransformerV1)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() == {"pos_embed1", "pos_embed2", "pos_embed3", "pos_embed4", "cls_token"}
    assert model.no_weight_decay() <= set(names)
    assert names["pos_embed4"].shape == (1, 1 + 7 * 7, 512) and names["pos_embed1"].shape == (1, 56 * 56, 64)


@pytest.mark.parametrize("factory, millions", [(pvt_tiny, 13.2), (pvt_small, 24.5), (pvt_medium, 44.2),
                                               (pvt_large, 61.4)])
def test_parameter_counts_match_paper(factory, millions):
    with torch.device("meta"):
        model = factory(num_classes=1000)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - millions) / millions < 0.01, count


def _slow_attention(model, x):
    """Materialise softmax(q·kᵀ·scale) (B,heads,N,N) of the last stage-4 block, [CLS, patches] order."""
    attn = model.block4[-1].attn
    seen = {}
    handle = attn.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))  # returns None: args kept
    with torch.no_grad():
        model(x)
    handle.remove()
    h = seen["x"]
    b, n, c = h.shape
    heads = attn.num_heads
    q = attn.q(h).reshape(b, n, heads, c // heads).transpose(1, 2)
    k, _ = attn.kv(h).reshape(b, n, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    return (q @ k.transpose(-2, -1) * attn.scale).softmax(-1)


def _slow_cls_attention(model, x):
    """Head-mean CLS row of the last stage-4 block's attention, without the CLS column."""
    return _slow_attention(model, x)[:, :, 0, 1:].mean(1)


@pytest.mark.parametrize("size", [(64, 64), (96, 64)])
def test_forward_with_attention_matches_slow_path(size):
    model = _tiny().eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        plain = model(x)
    logits, cls_attn = forward_with_attention(model, x)  # dispatches to model.forward_with_attention
    n4 = (size[0] // 32) * (size[1] // 32)
    assert logits.shape == (2, 10) and cls_attn.shape == (2, n4)
    assert not cls_attn.requires_grad and logits.requires_grad
    torch.testing.assert_close(logits.detach(), plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(cls_attn, _slow_cls_attention(model, x), atol=1e-5, rtol=0)


def test_smmix_clean_pass_scores_stage4_patches_by_the_attention_they_receive():
    """The official SMMix PVT's score: attn[:, :, 1:, 1:].mean((1, 2)) of the last block, eval mode, no grad."""
    torch.manual_seed(0)  # three stage-4 blocks: the last is not block4[1]; drop path: train and eval logits differ
    model = PyramidVisionTransformerV1(num_classes=10, depths=(1, 1, 1, 3), drop_path_rate=0.3).train()
    x = torch.randn(3, 3, 128, 128)
    logits, received = clean_pass(model, x)
    assert model.training and not received.requires_grad and received.shape == (3, 16)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), atol=1e-5, rtol=0)
    expected = _slow_attention(model, x)[:, :, 1:, 1:].mean(dim=(1, 2))
    torch.testing.assert_close(received, expected, atol=1e-6, rtol=0)
    assert (received - _slow_attention(model, x)[:, :, :, 1:].mean(dim=(1, 2))).abs().max() > 1e-4, "CLS query out"


def test_smmix_on_pvt_moves_stage4_cells_with_lambda_exact(monkeypatch):
    """Built from a config, SMMix mixes PVT's 32-px stage-4 cells (side 4 at 128 px: windows 1…3) and trains its
    region head on the stage-4 patch tokens."""
    model = MODELS.build(dict(type="MixClassifier", num_classes=10, smoothing=0.1,
                              method=dict(type="smmix", switch_prob=1.0), backbone=dict(type="pvt_tiny")))
    assert model.method.patch_size == 32
    seen = {}

    def spy(images, patch_size, scores, window, partner):
        out = smmix_images(images, patch_size, scores, window, partner)
        seen.update(patch_size=patch_size, scores=scores, window=window, pasted=out[1])
        return out

    monkeypatch.setattr(smmix, "smmix_images", spy)
    x, labels = torch.randn(4, 3, 128, 128), torch.tensor([0, 1, 2, 3])
    result = model.method(model.backbone, x, labels, torch.Generator().manual_seed(0))
    s = seen["window"]
    assert seen["patch_size"] == 32 and s in (1, 2, 3)
    assert result.lam.tolist() == [(16 - s * s) / 16] * 4 and seen["pasted"].sum(1).tolist() == [s * s] * 4
    torch.testing.assert_close(seen["scores"], clean_pass(model.backbone, x)[1], atol=1e-6, rtol=0)
    result.loss.backward()
    assert model.method.token_head.weight.grad.abs().sum() > 0


def test_grad_checkpointing_same_gradients():
    x = torch.randn(2, 3, 64, 64)
    y = torch.tensor([1, 3])
    grads = []
    for ckpt in (False, True):
        model = _tiny(drop_path_rate=0.1).train()
        model.set_grad_checkpointing(ckpt)
        torch.manual_seed(1)  # same drop-path draws (checkpoint restores the RNG state when recomputing)
        logits, _ = model.forward_with_attention(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)


def test_mmdet_backbone_loads_our_weights(tmp_path, assert_pvt_stages_match):
    from mmdet.models.backbones.pvt import PyramidVisionTransformer, pvt_convert
    from mmengine.config import ConfigDict

    torch.manual_seed(0)
    ours = pvt_tiny(num_classes=1000).eval()
    sd = ours.state_dict()
    path = tmp_path / "pvt_tiny.pth"
    torch.save(sd, path)

    def mmdet_tiny(**kw):
        return PyramidVisionTransformer(pretrain_img_size=224, embed_dims=64, num_layers=[2, 2, 2, 2],
                                        num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2],
                                        paddings=[0, 0, 0, 0], sr_ratios=[8, 4, 2, 1], mlp_ratios=[8, 8, 4, 4],
                                        use_abs_pos_embed=True, use_conv_ffn=False, norm_after_stage=False, **kw)

    # every backbone parameter is covered by the converted checkpoint, nothing left over
    missing, unexpected = mmdet_tiny().load_state_dict(pvt_convert(sd), strict=False)
    assert missing == [] and unexpected == []

    # the config path: init_cfg=Pretrained → init_weights() converts and loads (mmdet reads init_cfg.checkpoint as an
    # attribute, so it must be a ConfigDict as configs give it, not a plain dict)
    det = mmdet_tiny(init_cfg=ConfigDict(type="Pretrained", checkpoint=str(path)))
    det.init_weights()
    det.eval()
    p = dict(det.named_parameters())
    assert torch.equal(p["layers.0.0.projection.weight"], sd["patch_embed1.proj.weight"])
    assert torch.equal(p["layers.3.1.2.attn.attn.in_proj_weight"],
                       torch.cat([sd["block4.1.attn.q.weight"], sd["block4.1.attn.kv.weight"]]))
    assert torch.equal(p["layers.3.1.2.attn.attn.in_proj_bias"],
                       torch.cat([sd["block4.1.attn.q.bias"], sd["block4.1.attn.kv.bias"]]))
    assert torch.equal(p["layers.3.1.0.pos_embed"], sd["pos_embed4"][:, 1:])
    assert torch.equal(p["layers.0.1.1.attn.sr.weight"], sd["block1.0.attn.sr.weight"])
    assert torch.equal(p["layers.2.1.2.ffn.layers.3.weight"], sd["block3.1.mlp.fc2.weight"][..., None, None])

    # stages 1–3 (no CLS there) compute the same features; 64×64 exercises the pos-embed resize on both sides
    outs = assert_pvt_stages_match(ours, det, torch.randn(2, 3, 64, 64))
    assert outs[3].shape == (2, 512, 2, 2)



def test_block_mlp_is_timms_with_the_official_parameter_names():
    """PVT's MLP is timm.layers.Mlp: checkpoint keys stay ``block{i}.{j}.mlp.fc1|fc2.weight|bias`` and the function is
    fc2(GELU(fc1(x))) (dropout off)."""
    from timm.layers import Mlp
    model = _tiny().eval()
    mlp = model.block2[0].mlp
    assert isinstance(mlp, Mlp)
    assert sorted(k for k in model.state_dict() if k.startswith("block2.0.mlp.")) == [
        "block2.0.mlp.fc1.bias", "block2.0.mlp.fc1.weight", "block2.0.mlp.fc2.bias", "block2.0.mlp.fc2.weight"]
    assert mlp.fc1.weight.shape == (8 * 128, 128) and mlp.fc2.weight.shape == (128, 8 * 128)
    x = torch.randn(2, 5, 128)
    expected = torch.nn.functional.linear(torch.nn.functional.gelu(mlp.fc1(x)), mlp.fc2.weight, mlp.fc2.bias)
    torch.testing.assert_close(mlp(x), expected, rtol=0, atol=0)

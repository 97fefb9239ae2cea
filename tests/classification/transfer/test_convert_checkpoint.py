"""classification.transfer.convert (tools/convert_checkpoint.py): our ViT -> mmseg VisionTransformer, our PVT v1 ->
mmdet PyramidVisionTransformer, bare timm state dicts and safetensors; errors for the wrong architecture and for files
that are no checkpoint.

The numerical checks are the real proof of a conversion: the converted mmseg / mmdet backbones give the features of
the source model (small models at 64×64 on CPU)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import classification.transfer.convert as cc
from classification.models.pvt import pvt_tiny
from classification.models.vits import deit_tiny
from classification.models.pretrained import read_backbone_state

from classification.foundation.host import ROOT
TOOL = os.path.join(ROOT, "tools", "convert_checkpoint.py")



def _save_ours(model, path, extra=None):
    """Our checkpoint layout: mmengine checkpoint, MixClassifier keys prefixed 'backbone.'."""
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state.update(extra or {})
    torch.save({"state_dict": state, "meta": {"epoch": 1, "arch": type(model).__name__}}, path)
    return str(path)


def _seeded_checkpoint(factory, folder):
    """(model, path): ``factory`` at 64 px with 10 classes from seed 0, saved in our layout under ``folder``."""
    torch.manual_seed(0)
    model = factory(img_size=64, num_classes=10).eval()
    return model, _save_ours(model, folder / f"{factory.__name__}.pth")


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return _seeded_checkpoint(deit_tiny, tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="module")
def pvt(tmp_path_factory):
    return _seeded_checkpoint(pvt_tiny, tmp_path_factory.mktemp("pvt"))


def _mmseg_vit(img_size=64, **kw):
    from mmseg.models.backbones import VisionTransformer

    # patch_bias: timm's patch conv has a bias (mmseg's default has none); eps: timm's LayerNorms use 1e-6.
    backbone = VisionTransformer(img_size=img_size, patch_size=16, embed_dims=192, num_layers=12, num_heads=3,
                                 mlp_ratio=4, qkv_bias=True, with_cls_token=True, output_cls_token=False,
                                 final_norm=True, out_indices=(11,), patch_bias=True,
                                 norm_cfg=dict(type="LN", eps=1e-6), interpolate_mode="bicubic", **kw)
    backbone.eval()  # mmseg's VisionTransformer.train() returns None, so no chaining
    return backbone


def _mmdet_pvt_tiny(img_size=64):
    from mmdet.models.backbones.pvt import PyramidVisionTransformer

    return PyramidVisionTransformer(pretrain_img_size=img_size, embed_dims=64, num_layers=[2, 2, 2, 2],
                                    num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2],
                                    sr_ratios=[8, 4, 2, 1], mlp_ratios=[8, 8, 4, 4], qkv_bias=True,
                                    drop_path_rate=0.).eval()


def _no_temp_files(directory):
    return not [f for f in os.listdir(directory) if f.startswith(".tmp-")]


def test_detect_architecture(vit, pvt):
    assert cc.detect_architecture(read_backbone_state(vit[1])[0]) == "vit"
    assert cc.detect_architecture(read_backbone_state(pvt[1])[0]) == "pvt"
    with pytest.raises(ValueError, match="unknown architecture"):
        cc.detect_architecture({"conv1.weight": torch.zeros(1)})


def test_vit_to_mmseg_keys_and_features(vit):
    model, path = vit
    state, outside = read_backbone_state(path)
    assert outside == []
    new_state, report = cc.convert_to_mmseg_vit(state)
    assert set(report.dropped) == {"head.weight", "head.bias"}
    assert report.converted == len(new_state) == len(state) - 2
    assert "layers.0.attn.attn.in_proj_weight" in new_state and "ln1.weight" in new_state

    backbone = _mmseg_vit()
    result = backbone.load_state_dict(new_state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model.forward_features(x)[:, 1:]  # final-normed patch tokens (B, 16, 192)
        (out,) = backbone(x)  # (B, 192, 4, 4), mmseg applies its final norm ('ln1') on the last layer
    assert out.shape == (2, 192, 4, 4)
    torch.testing.assert_close(out.flatten(2).transpose(1, 2), ref, atol=1e-4, rtol=1e-4)


def test_vit_to_mmseg_other_size(vit, tmp_path):
    model, path = vit
    state, _ = read_backbone_state(path)
    x = torch.randn(1, 3, 128, 128)

    # (a) resized by the converter (--img-size 128 128): loads into an img_size=128 backbone as it is.
    resized, report = cc.convert_to_mmseg_vit(state, img_size=(128, 128))
    assert resized["pos_embed"].shape == (1, 1 + 8 * 8, 192)
    torch.testing.assert_close(resized["pos_embed"][:, 0], state["pos_embed"][:, 0])  # CLS entry kept
    assert any("resized" in n for n in report.notes)
    big = _mmseg_vit(128)
    result = big.load_state_dict(resized, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    with torch.no_grad():
        (out_a,) = big(x)
    assert out_a.shape == (1, 192, 8, 8)

    # (b) converted at 64 by the CLI; mmseg's init_weights (init_cfg Pretrained) resizes pos_embed at load time,
    # with the same bicubic resize as the converter.
    dst = str(tmp_path / "vit_mmseg.pth")
    assert cc.main([path, dst, "--to", "mmseg-vit"]) == 0
    assert _no_temp_files(tmp_path)
    by_mmseg = _mmseg_vit(128, init_cfg=dict(type="Pretrained", checkpoint=dst))
    by_mmseg.init_weights()
    torch.testing.assert_close(by_mmseg.pos_embed.data, resized["pos_embed"])

    # (c) a backbone built at 64 resizes at forward time for a 128 input: same features as (a).
    small = _mmseg_vit(64)
    small.load_state_dict(cc.convert_to_mmseg_vit(state)[0], strict=True)
    with torch.no_grad():
        (out_c,) = small(x)
    assert out_c.shape == (1, 192, 8, 8)
    torch.testing.assert_close(out_c, out_a, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("src, img_size", [((4, 4), (128, 128)), ((4, 4), (32, 48)), ((3, 4), (112, 32))])
def test_pos_embed_resize_is_plain_bicubic_without_antialiasing(vit, src, img_size):
    """--img-size resizes the patch grid of pos_embed with F.interpolate (bicubic, align_corners=False, no
    antialiasing: what mmseg computes) through timm's resample_abs_pos_embed, bit for bit; the CLS entry is kept.
    timm's default antialias=True would differ when the grid shrinks."""
    state = dict(read_backbone_state(vit[1])[0])
    torch.manual_seed(1)
    state["pos_embed"] = torch.randn(1, 1 + src[0] * src[1], 192)
    resized, _ = cc.convert_to_mmseg_vit(state, img_size=img_size, src_grid=src)
    grid = (img_size[0] // 16, img_size[1] // 16)
    patch = state["pos_embed"][:, 1:].reshape(1, *src, 192).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(patch, size=grid, mode="bicubic", align_corners=False)
    expected = torch.cat([state["pos_embed"][:, :1], expected.flatten(2).transpose(1, 2)], dim=1)
    assert torch.equal(resized["pos_embed"], expected)
    if grid[0] < src[0] or grid[1] < src[1]:
        from timm.layers import resample_abs_pos_embed
        antialiased = resample_abs_pos_embed(state["pos_embed"], new_size=list(grid), old_size=list(src))
        assert not torch.allclose(antialiased, expected, atol=1e-3)


def test_pos_embed_grid_errors(vit):
    state = dict(read_backbone_state(vit[1])[0])
    with pytest.raises(ValueError, match="not 3x3"):
        cc.convert_to_mmseg_vit(state, img_size=128, src_grid=(3, 3))
    state["pos_embed"] = torch.zeros(1, 1 + 12, 192)
    with pytest.raises(ValueError, match="not a square grid"):
        cc.convert_to_mmseg_vit(state, img_size=128)


def test_pvt_to_mmdet_keys_and_features(pvt, assert_pvt_stages_match):
    model, path = pvt
    state, _ = read_backbone_state(path)
    new_state, report = cc.convert_to_mmdet_pvt(state)
    assert set(report.dropped) == {"head.weight", "head.bias", "norm.weight", "norm.bias", "cls_token"}
    # stage 4's pos_embed loses its CLS entry (1 + 2·2 at 64 px; mmdet's converter only handles 1 + 7·7)
    torch.testing.assert_close(new_state["layers.3.1.0.pos_embed"], state["pos_embed4"][:, 1:])

    backbone = _mmdet_pvt_tiny()
    result = backbone.load_state_dict(new_state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []

    # Stages 1-3 are the same computation in both (stage 4 of the classifier also attends to the CLS token).
    outs = assert_pvt_stages_match(model, backbone, torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 320, 4, 4), (2, 512, 2, 2)]


def test_wrong_architecture(vit, pvt, tmp_path, capsys):
    pvt_state, _ = read_backbone_state(pvt[1])
    vit_state, _ = read_backbone_state(vit[1])
    with pytest.raises(ValueError, match="'pvt'.*expects 'vit'"):
        cc.convert_to_mmseg_vit(pvt_state)
    with pytest.raises(ValueError, match="'vit'.*expects 'pvt'"):
        cc.convert_to_mmdet_pvt(vit_state)

    dst = tmp_path / "out.pth"
    assert cc.main([pvt[1], str(dst), "--to", "mmseg-vit"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "pvt" in err[0] and pvt[1] in err[0]
    assert not dst.exists() and _no_temp_files(tmp_path)


def test_not_a_checkpoint_exits_2(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a checkpoint\n")
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for bad in (text, noise):
        proc = subprocess.run([sys.executable, TOOL, str(bad), str(tmp_path / "out.pth"), "--to", "timm"],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "out.pth").exists()


def test_safetensors_export(vit, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    model, path = vit
    state, _ = read_backbone_state(path)
    dst = str(tmp_path / "deit_tiny.safetensors")
    report = cc.export_safetensors(state, dst, source=path)
    assert set(report.dropped) == {"head.weight", "head.bias"}
    loaded = load_file(dst)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        assert torch.equal(loaded[k], v), k
    with safe_open(dst, framework="pt") as f:
        assert f.metadata() == {"format": "pt", "source": path}
    assert _no_temp_files(tmp_path)


def test_timm_export_loads_into_deit(vit, tmp_path, capsys):
    model, path = vit
    dst = str(tmp_path / "deit_tiny_backbone.pth")
    assert cc.main([path, dst, "--to", "timm"]) == 0
    out = capsys.readouterr().out
    assert "head.weight" in out and "missing keys (0)" in out and "unexpected keys (0)" in out
    state = torch.load(dst, map_location="cpu", weights_only=True)
    assert not any(k.startswith("head.") for k in state)
    fresh = deit_tiny(img_size=64, num_classes=10)
    result = fresh.load_state_dict(state, strict=False)
    assert result.unexpected_keys == [] and sorted(result.missing_keys) == ["head.bias", "head.weight"]
    torch.testing.assert_close(fresh.pos_embed, model.pos_embed)


def test_mmengine_checkpoint_with_mixing_params(vit, tmp_path, capsys):
    """A Runner checkpoint holds a message hub (HistoryBuffer, numpy) and may hold mixing-only parameters
    outside 'backbone.': both are handled, the latter dropped and reported."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("convert_checkpoint_test")
    hub.update_scalar("train/loss", 1.5)
    hub.update_info("iter", np.int64(3))
    model, _ = vit
    src = str(tmp_path / "runner.pth")
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state["mixer.alpha"] = torch.ones(1)
    torch.save({"meta": {"seed": np.int64(0)}, "state_dict": state, "message_hub": hub.state_dict()}, src)

    backbone, outside = read_backbone_state(src)
    assert outside == ["mixer.alpha"] and "mixer.alpha" not in backbone
    dst = str(tmp_path / "mmseg.pth")
    assert cc.main([src, dst, "--to", "mmseg-vit", "--img-size", "128", "128"]) == 0
    out = capsys.readouterr().out
    assert "mixer.alpha" in out and "missing keys (0)" in out and "unexpected keys (0)" in out
    converted = torch.load(dst, map_location="cpu", weights_only=True)["state_dict"]
    assert converted["pos_embed"].shape == (1, 65, 192) and "mixer.alpha" not in converted


SMMIX_OUTSIDE_BACKBONE = {"method.token_head.weight", "method.token_head.bias", "mix_step"}  # region head, step count


def _smmix_checkpoint(backbone: str, folder):
    """(MixClassifier with SMMix on a 64-px ``backbone`` from seed 0, its Runner-layout checkpoint): the state holds
    SMMix's region head ``method.token_head.*`` and ``mix_step`` beside ``backbone.*``."""
    from classification.models.mix_classifier import MixClassifier
    torch.manual_seed(0)
    model = MixClassifier(backbone=dict(type=backbone, img_size=64), num_classes=10,
                          method=dict(type="smmix")).eval()
    with torch.no_grad():  # a region head unlike every backbone tensor (its default bias is zeros, as some are)
        model.method.token_head.bias.uniform_(5.0, 6.0)
    path = str(folder / f"{backbone}_smmix.pth")
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 1}}, path)
    assert {k for k in model.state_dict() if not k.startswith("backbone.")} == SMMIX_OUTSIDE_BACKBONE
    return model, path


def _dropped(report: str) -> set:
    """The keys of the report's ``dropped keys (n): a, b, ...`` line."""
    (line,) = [x for x in report.splitlines() if x.startswith("dropped keys")]
    return set(line.split(": ", 1)[1].split(", "))


def _assert_backbone_tensors_only(converted, model, dropped_by_target, fused=()):
    """The converted tensors hold exactly the numbers of the classifier backbone without ``dropped_by_target``: as
    many elements, each tensor one of the backbone's own by value (flattened: mmdet's PVT holds its MLP as 1×1
    convolutions), whatever the key mapping, except keys containing one of ``fused`` (mmdet's ``in_proj_*``:
    PVT's q and kv concatenated); none is SMMix's region head."""
    own = [v.flatten() for k, v in model.backbone.state_dict().items() if not k.startswith(dropped_by_target)]
    assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in own)
    assert not any("method" in k or "token_head" in k for k in converted)
    head = [model.method.token_head.weight.flatten(), model.method.token_head.bias]
    for key, value in converted.items():
        value = value.flatten()
        same_size = [o for o in own if o.numel() == value.numel()]
        assert any(f in key for f in fused) or any(torch.equal(value, o) for o in same_size), key
        assert not any(torch.equal(value, h) for h in head if h.numel() == value.numel()), key


def test_smmix_checkpoint_to_mmseg_vit_drops_the_region_head_and_loads_strictly(tmp_path, capsys):
    model, src = _smmix_checkpoint("deit_tiny", tmp_path)
    dst = str(tmp_path / "smmix_mmseg.pth")
    assert cc.main([src, dst, "--to", "mmseg-vit"]) == 0
    out = capsys.readouterr().out
    assert _dropped(out) == SMMIX_OUTSIDE_BACKBONE | {"head.weight", "head.bias"}
    assert "missing keys (0)" in out and "unexpected keys (0)" in out
    converted = torch.load(dst, map_location="cpu", weights_only=True)["state_dict"]
    _assert_backbone_tensors_only(converted, model, ("head.",))
    backbone = _mmseg_vit()
    backbone.load_state_dict(converted, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model.backbone.forward_features(x)[:, 1:]
        (features,) = backbone(x)
    torch.testing.assert_close(features.flatten(2).transpose(1, 2), ref, atol=1e-4, rtol=1e-4)


def test_smmix_pvt_checkpoint_to_mmdet_pvt_drops_the_region_head_and_loads_strictly(tmp_path, capsys,
                                                                                     assert_pvt_stages_match):
    model, src = _smmix_checkpoint("pvt_tiny", tmp_path)
    dst = str(tmp_path / "smmix_mmdet.pth")
    assert cc.main([src, dst, "--to", "mmdet-pvt"]) == 0
    out = capsys.readouterr().out
    assert _dropped(out) == SMMIX_OUTSIDE_BACKBONE | {"head.weight", "head.bias", "norm.weight", "norm.bias", "cls_token"}
    assert "missing keys (0)" in out and "unexpected keys (0)" in out
    converted = torch.load(dst, map_location="cpu", weights_only=True)["state_dict"]
    # mmdet drops the classifier's head, final norm and CLS token; stage 4's pos_embed loses its CLS entry
    pos4 = converted.pop("layers.3.1.0.pos_embed")
    torch.testing.assert_close(pos4, model.backbone.pos_embed4[:, 1:], rtol=0, atol=0)
    _assert_backbone_tensors_only(converted, model, ("head.", "norm.", "cls_token", "pos_embed4"),
                                  fused=("in_proj_",))
    converted["layers.3.1.0.pos_embed"] = pos4
    backbone = _mmdet_pvt_tiny()
    backbone.load_state_dict(converted, strict=True)
    assert_pvt_stages_match(model.backbone, backbone, torch.randn(2, 3, 64, 64))

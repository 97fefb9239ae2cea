"""Checkpoint layouts users have (classification.foundation.checkpoint_sources) → our classifiers and, converted, the strict
downstream backbones (segmentation.backbones, detection.backbones).

Every source checkpoint has every tensor random (torch.randn under a fixed generator, not a fresh initialisation
where all LayerNorms are equal), so a mix-up between two same-shaped tensors fails: the classifier must hold each
tensor exactly, and the converted mmseg ViT / mmdet PVT must compute the source classifier's features."""
import argparse
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

import classification.transfer.convert as cc
from classification.foundation.checkpoint_sources import read_checkpoint_source
from classification.foundation.checkpoints import CheckpointMismatchError
from classification.models.pvt import pvt_tiny
from classification.models.vits import deit_tiny, deit_tiny_patch14, tiny_vit
from classification.models.pretrained import load_pretrained
from detection.backbones import StrictPyramidVisionTransformer
from segmentation.backbones import StrictVisionTransformer

from classification.foundation.host import ROOT
FMNIST = "/usr/share/datasets/fashion-mnist"
# mmdet's PVT logs through the deprecated Logger.warn
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

# layout -> (factory, img_size, container written, ema read, what the layout report says)
LAYOUTS = {
    "timm-state_dict": (deit_tiny, 64, "timm", False, "'state_dict'"),
    "timm-state_dict_ema": (deit_tiny, 64, "timm", True, "'state_dict_ema'"),
    "timm-safetensors": (deit_tiny, 64, "safetensors", False, "safetensors (timm hub format), timm ViT names"),
    "mixpro-official-p14": (deit_tiny_patch14, 56, "release", False, "{'model': ...}"),
    "deit-official": (deit_tiny, 64, "release", False, "release {'model': ...} (DeiT, official MixPro, PVT v1)"),
    "pvt-official": (pvt_tiny, 64, "release", False, "official PVT v1 names"),
}


def randomized(model, seed):
    """Every tensor of ``model``'s state dict replaced by randn of its shape (scaled by 0.2), seeded."""
    g = torch.Generator().manual_seed(seed)
    return OrderedDict((k, 0.2 * torch.randn(v.shape, generator=g)) for k, v in model.state_dict().items())


def write_source(name, folder):
    """(path, the state the reader must return, a fresh classifier of the architecture)."""
    factory, size, container, ema, _ = LAYOUTS[name]
    model = factory(img_size=size, num_classes=10)
    state, other = randomized(model, 1), randomized(model, 2)
    path = str(folder / ("model.safetensors" if container == "safetensors" else f"{name}.pth"))
    if container == "safetensors":
        save_file(dict(state), path)
    elif container == "timm":  # timm's train.py checkpoint: args, optimiser, EMA beside the weights
        torch.save({"epoch": 3, "arch": "deit_tiny_patch16_224", "state_dict": state, "state_dict_ema": other,
                    "optimizer": {"state": {}, "param_groups": []}, "version": 2,
                    "args": argparse.Namespace(model="deit_tiny_patch16_224", lr=5e-4)}, path)
    else:
        torch.save({"model": state}, path)
    return path, (other if ema else state), factory(img_size=size, num_classes=10)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_is_recognised_and_loads_into_our_classifier_tensor_for_tensor(name, tmp_path):
    path, expected, fresh = write_source(name, tmp_path)
    ema = LAYOUTS[name][3]
    source = read_checkpoint_source(path, ema=ema)
    assert LAYOUTS[name][4] in source.layout
    if name == "mixpro-official-p14":
        assert "patch 14" in source.layout
    if name == "timm-state_dict":
        assert any("state_dict_ema" in n for n in source.notes) and source.dropped == []
    report = load_pretrained(fresh, dict(checkpoint=path, ema=ema))
    assert report.loaded == len(expected) and not report.kept_initial
    own = fresh.state_dict()
    for key, value in expected.items():
        assert torch.equal(own[key], value), key


def _strict_vit(checkpoint, img_size, patch_size=16, num_layers=12):
    return StrictVisionTransformer(
        img_size=img_size, patch_size=patch_size, embed_dims=192, num_layers=num_layers, num_heads=3, mlp_ratio=4,
        qkv_bias=True, with_cls_token=True, output_cls_token=False, final_norm=True, out_indices=(num_layers - 1,),
        patch_bias=True, norm_cfg=dict(type="LN", eps=1e-6), interpolate_mode="bicubic",
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint))


def _strict_pvt(checkpoint, img_size=64, convert_weights=False):
    return StrictPyramidVisionTransformer(
        pretrain_img_size=img_size, embed_dims=64, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
        patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2], sr_ratios=[8, 4, 2, 1], mlp_ratios=[8, 8, 4, 4],
        qkv_bias=True, drop_path_rate=0., convert_weights=convert_weights,
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_converts_to_the_strict_downstream_backbone(name, tmp_path, capsys, assert_pvt_stages_match):
    path, expected, classifier = write_source(name, tmp_path)
    classifier.load_state_dict(expected)
    classifier.eval()
    factory, size, _, ema, layout = LAYOUTS[name]
    pvt = factory is pvt_tiny
    dst = str(tmp_path / "converted.pth")
    assert cc.main([path, dst, "--to", "mmdet-pvt" if pvt else "mmseg-vit", *(["--ema"] if ema else [])]) == 0
    out = capsys.readouterr().out
    assert "source layout: " in out and layout in out and "missing keys (0)" in out and "unexpected keys (0)" in out
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    if pvt:
        backbone = _strict_pvt(dst)
        backbone.init_weights()
        backbone.eval()
        assert torch.equal(backbone.layers[3][1][0].pos_embed, expected["pos_embed4"][:, 1:])
        assert_pvt_stages_match(classifier, backbone, x)
        return
    patch = classifier.patch_embed.proj.weight.shape[-1]
    backbone = _strict_vit(dst, size, patch)
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        ref = classifier.forward_features(x)[:, 1:]  # final-normed patch tokens
        (feat,) = backbone(x)
    torch.testing.assert_close(feat.flatten(2).transpose(1, 2), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


@pytest.fixture(scope="module")
def vit_files(tmp_path_factory):
    """A DeiT-T at 64 px (patch 16) and one at 56 px (patch 14, the official MixPro layout), converted to mmseg."""
    folder = tmp_path_factory.mktemp("strict")
    files = {}
    for key, factory, size in (("p16", deit_tiny, 64), ("p14", deit_tiny_patch14, 56)):
        src = str(folder / f"{key}.pth")
        torch.save({"model": randomized(factory(img_size=size, num_classes=10), 4)}, src)
        files[key] = str(folder / f"{key}_mmseg.pth")
        cc.convert_file(src, files[key], "mmseg-vit")
        files[f"{key}-src"] = src
    return files


def test_patch_image_size_and_depth_mismatches_are_errors_naming_key_and_shapes(vit_files, tmp_path):
    with pytest.raises(CheckpointMismatchError, match=r"patch_embed\.projection\.weight \(checkpoint \(192, 3, 14, "
                                                      r"14\), model \(192, 3, 16, 16\)\)"):
        _strict_vit(vit_files["p14"], 64).init_weights()
    before = _strict_vit(vit_files["p16"], 128)
    pos = before.pos_embed.detach().clone()
    with pytest.raises(CheckpointMismatchError, match=r"pos_embed \(checkpoint \(1, 17, 192\), model \(1, 65, 192\)\)"
                                                      r".*--img-size 128 128"):
        before.init_weights()
    assert torch.equal(before.pos_embed, pos), "nothing is loaded when the checkpoint does not fit"
    with pytest.raises(CheckpointMismatchError, match=r"72 not in the model: layers\.10\.attn"):
        _strict_vit(vit_files["p16"], 64, num_layers=6).init_weights()
    # the explicit resize: converted for the backbone's img_size, it loads (and the report says so)
    resized = str(tmp_path / "p16_128.pth")
    report = cc.convert_file(vit_files["p16-src"], resized, "mmseg-vit", img_size=(128, 128))
    assert any("resized bicubically (1, 17, 192) -> (1, 65, 192)" in n for n in report.notes)
    _strict_vit(resized, 128).init_weights()


def test_pvt_of_another_input_size_is_an_error(tmp_path):
    src = str(tmp_path / "pvt_official.pth")
    torch.save({"model": randomized(pvt_tiny(img_size=64, num_classes=10), 5)}, src)
    dst = str(tmp_path / "pvt_mmdet.pth")
    cc.convert_file(src, dst, "mmdet-pvt")
    with pytest.raises(CheckpointMismatchError, match=r"layers\.0\.1\.0\.pos_embed \(checkpoint \(1, 256, 64\), model "
                                                      r"\(1, 3136, 64\)\).*pretrain_img_size.*224"):
        _strict_pvt(dst, img_size=224).init_weights()
    # the release read as it is, through mmdet's pvt_convert: at 64 px it keeps pos_embed4's CLS entry (mmdet strips it
    # only at 1 + 7·7), which the strict load names instead of leaving stage 4's positions random
    with pytest.raises(CheckpointMismatchError, match=r"layers\.3\.1\.0\.pos_embed \(checkpoint \(1, 5, 512\), model "
                                                      r"\(1, 4, 512\)\)"):
        _strict_pvt(src, convert_weights=True).init_weights()


def _run(args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.needs_data(FMNIST)
def test_patch14_checkpoint_stops_a_patch16_segmenter_before_training(tmp_path):
    from classification.transfer.downstream_data.composite import make_composite

    make_composite(str(tmp_path / "composite"), num_train=2, num_val=1, size=128, seed=5, verbose=False)
    src, ckpt = str(tmp_path / "p14.pth"), str(tmp_path / "p14_mmseg.pth")
    torch.save({"model": randomized(tiny_vit(img_size=112, patch_size=14, embed_dim=64, depth=4, num_heads=2), 6)},
               src)
    cc.convert_file(src, ckpt, "mmseg-vit", img_size=(128, 128))
    config = osp.join(ROOT, "configs/segmentation/segmenter-mask_tiny-vit_fmnist-mixpro_1xb8-2k_composite-128.py")
    data = tmp_path / "composite"
    proc = _run([sys.executable, "tools/train.py", config, "--work-dir", str(tmp_path / "work"), "--cfg-options",
                 "model.backbone.patch_size=16", f"model.backbone.init_cfg.checkpoint={ckpt}",
                 f"train_dataloader.dataset.data_root={data}", f"val_dataloader.dataset.data_root={data}",
                 "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
                 "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False", "train_cfg.max_iters=2"])
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert ckpt in lines[-1] and "patch_embed.projection.weight (checkpoint (64, 1, 14, 14), model (64, 1, 16, 16))" \
        in lines[-1]
    assert "Iter(train)" not in proc.stdout + proc.stderr


@pytest.mark.needs_data(FMNIST)
def test_tools_test_reads_a_timm_checkpoint_into_the_classifier(tmp_path):
    config = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
    small = ["test_dataloader.dataset.limit=32", "test_dataloader.num_workers=0",
             "test_dataloader.persistent_workers=False"]
    good, bad = str(tmp_path / "model.safetensors"), str(tmp_path / "patch4.pth")
    save_file(dict(randomized(tiny_vit(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2), 7)), good)
    torch.save({"state_dict": randomized(tiny_vit(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=2), 8)},
               bad)
    proc = _run([sys.executable, "tools/test.py", config, good, "--work-dir", str(tmp_path / "t1"), "--cfg-options",
                 *small])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "safetensors (timm hub format), timm ViT names, patch 8" in log and "top1:" in log
    proc = _run([sys.executable, "tools/test.py", config, bad, "--work-dir", str(tmp_path / "t2"), "--cfg-options",
                 *small])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "backbone.patch_embed.proj.weight (checkpoint (64, 1, 4, 4), model (64, 1, 8, 8))" in \
        proc.stderr.strip().splitlines()[-1]

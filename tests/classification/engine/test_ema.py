"""EMA weights (#31 item 2): tools/test.py, visualize.py and robustness.py score a checkpoint's EMA copy with --ema
and say in one line when a copy goes unused; ``convert_checkpoint.py --ema --to timm --keep-head`` gives a file that
tools/test.py scores as the EMA weights. A timm-style checkpoint whose ``state_dict`` and ``state_dict_ema`` differ;
the expected top-1 is computed here from the tensors with a plain ``load_state_dict`` and a forward pass."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS
from mmengine.runner.checkpoint import CheckpointLoader

import classification.register_all  # noqa: F401  (registration)
from classification.engine import launch
from classification.foundation.errors import USER_ERROR_EXIT, run_tool
from classification.experiments import visualize
from classification.experiments.robustness import report as robustness
from classification.transfer import convert

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"
N = 200  # test images scored
SMALL = [f"test_dataloader.dataset.limit={N}", "test_dataloader.batch_size=100"]
pytestmark = pytest.mark.needs_data(FMNIST)


def backbone_state(seed):
    torch.manual_seed(seed)
    return MODELS.build(Config.fromfile(CONFIG).model).backbone.state_dict()


@pytest.fixture(scope="module")
def weights():
    """Two different backbones (timm names) and the top-1 each gives on the first N test images, computed here."""
    cfg = Config.fromfile(CONFIG)
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, limit=N))
    items = [dataset[i] for i in range(N)]
    images = torch.stack([it["inputs"] for it in items])
    labels = torch.tensor([it["data_samples"] for it in items])
    out = {}
    for name, seed in (("raw", 0), ("ema", 1)):
        state = backbone_state(seed)
        backbone = MODELS.build(cfg.model).backbone.eval()
        backbone.load_state_dict(state)
        with torch.no_grad():
            top1 = float((backbone(images).argmax(1) == labels).double().mean() * 100)
        out[name] = (state, round(top1, 4))
    assert out["raw"][1] != out["ema"][1], "the two copies must score differently for the test to tell them apart"
    return out


@pytest.fixture
def timm_checkpoint(tmp_path, weights):
    path = tmp_path / "timm_train.pth"
    torch.save({"state_dict": weights["raw"][0], "state_dict_ema": weights["ema"][0], "epoch": 3}, path)
    return str(path)


@pytest.fixture(autouse=True)
def own_loader(monkeypatch):
    monkeypatch.setattr(CheckpointLoader, "_schemes", dict(CheckpointLoader._schemes))


def test_test_tool_scores_the_ema_copy_with_ema(tmp_path, weights, timm_checkpoint, capsys):
    metrics = launch.run_test([CONFIG, timm_checkpoint, "--ema", "--work-dir", str(tmp_path / "e"),
                               "--cfg-options", *SMALL])
    assert metrics["top1"] == weights["ema"][1]
    metrics = launch.run_test([CONFIG, timm_checkpoint, "--work-dir", str(tmp_path / "r"), "--cfg-options", *SMALL])
    assert metrics["top1"] == weights["raw"][1]
    log = capsys.readouterr()
    assert (f"{timm_checkpoint} also holds EMA weights ('state_dict_ema'), which are not used: --ema "
            f"(pretrained: ema=True) reads those") in log.out + log.err


def test_an_emahook_checkpoint_holds_its_ema_copy_in_state_dict(tmp_path, weights, capsys):
    """mmengine's EMAHook saves the averaged weights as ``state_dict``, the raw ones as ``ema_state_dict``."""
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.backbone.load_state_dict(weights["ema"][0])
    ema_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.backbone.load_state_dict(weights["raw"][0])
    raw = {"module." + k: v for k, v in model.state_dict().items()}
    path = str(tmp_path / "epoch_3.pth")
    torch.save({"state_dict": ema_state, "ema_state_dict": dict(raw, steps=torch.tensor(30)), "meta": {}}, path)
    for option in ([], ["--ema"]):
        metrics = launch.run_test([CONFIG, path, *option, "--work-dir", str(tmp_path / "t"), "--cfg-options", *SMALL])
        assert metrics["top1"] == weights["ema"][1]
    log = capsys.readouterr()
    assert f"{path} was saved with EMAHook: its state_dict holds the EMA (averaged) weights" in log.out + log.err


def test_ema_of_a_checkpoint_without_one_is_one_line(tmp_path, weights, capsys):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": weights["raw"][0]}, path)
    with pytest.raises(SystemExit) as info:
        run_tool(lambda: launch.run_test([CONFIG, str(path), "--ema", "--work-dir", str(tmp_path / "t"),
                                          "--cfg-options", *SMALL]))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == USER_ERROR_EXIT and len(err) == 1
    assert err[0].startswith(f"error: {path} has no EMA weights (no 'state_dict_ema' / 'model_ema' entry")


def test_converted_ema_with_its_head_is_testable(tmp_path, weights, timm_checkpoint, capsys):
    headless = str(tmp_path / "headless.pth")
    assert convert.main([timm_checkpoint, headless, "--to", "timm", "--ema"]) == 0
    assert not any(k.startswith("head.") for k in torch.load(headless))
    capsys.readouterr()
    kept = str(tmp_path / "ema_timm.pth")
    assert convert.main([timm_checkpoint, kept, "--to", "timm", "--ema", "--keep-head"]) == 0
    out = capsys.readouterr().out
    assert "checked against VisionTransformer classifier with its 10-class head:" in out
    assert "missing keys (0): -" in out and "unexpected keys (0): -" in out and "dropped keys (0): -" in out
    state = torch.load(kept)
    assert set(state) == set(weights["ema"][0])
    assert all(torch.equal(state[k], v) for k, v in weights["ema"][0].items())
    metrics = launch.run_test([CONFIG, kept, "--work-dir", str(tmp_path / "t"), "--cfg-options", *SMALL])
    assert metrics["top1"] == weights["ema"][1]
    assert convert.main([timm_checkpoint, str(tmp_path / "x.pth"), "--to", "mmseg-vit", "--keep-head"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--keep-head applies to --to timm / safetensors" in err


def test_robustness_and_the_grid_read_the_ema_copy(tmp_path, weights, timm_checkpoint):
    result = robustness.main([CONFIG, timm_checkpoint, "--ema", "--suite", "occlusion", "--max-samples", str(N),
                              "--out-dir", str(tmp_path / "r"), "--quiet"])
    clean = next(iter(result["models"].values()))["clean_top1"]
    assert round(clean, 4) == weights["ema"][1]
    assert json.loads((tmp_path / "r" / "robustness.json").read_text())["models"]
    grids = {}
    for option in ([], ["--ema"]):
        grids[bool(option)] = visualize.main([CONFIG, timm_checkpoint, *option, "--num", "4",
                                              "--out", str(tmp_path / "g.png")])
    model = MODELS.build(Config.fromfile(CONFIG).model).eval()
    for ema, name in ((False, "raw"), (True, "ema")):
        model.backbone.load_state_dict(weights[name][0])
        grid = grids[ema]
        expected = visualize.maskmix_panels(model, grid.originals, grid.labels, seed=0)
        torch.testing.assert_close(grid.lam, expected.lam, rtol=0, atol=0)
    assert not torch.equal(grids[False].lam, grids[True].lam)


def test_a_pretrained_backbone_reads_the_ema_copy_when_asked_and_says_when_not(weights, timm_checkpoint, monkeypatch):
    from classification.foundation import checkpoint_sources as loading
    notes = []
    monkeypatch.setattr(loading, "print_log", lambda msg, **kw: notes.append(msg))
    for pretrained, name in ((timm_checkpoint, "raw"), (dict(checkpoint=timm_checkpoint, ema=True), "ema")):
        cfg = Config.fromfile(CONFIG)
        cfg.model.backbone.pretrained = pretrained
        backbone = MODELS.build(cfg.model).backbone
        assert all(torch.equal(backbone.state_dict()[k], v) for k, v in weights[name][0].items()), name
    assert notes == [f"{timm_checkpoint} also holds EMA weights ('state_dict_ema'), which are not used: --ema "
                     f"(pretrained: ema=True) reads those"]

"""The uint8 image path: uint8 out of the dataset and its workers, normalisation on the device equal to the float
transform's, random erasing statistics on the device, and a Runner training a DeiT-tiny config through it."""
import math
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from torch.utils.data import DataLoader

import classification.register_all  # noqa: F401  (registration)
from classification.data.synthetic_imagenet import make_synthetic_imagenet
from classification.data.imagenet import ImageNetFolder, decode_rgb
from classification.data.preprocessor import ImageNetPreprocessor, normalize_uint8
from classification.data.transforms import build_transform

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DEIT_T = "configs/classification/deit-t_baseline_8xb128-300e_in1k.py"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("inet")
    make_synthetic_imagenet(str(root), classes=2, train_per_class=4, val_per_class=2, min_side=72, max_side=96,
                            processes=1)
    return str(root)


def _seeded(fn, seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return fn()


def test_dataset_and_workers_return_uint8(folder):
    ds = ImageNetFolder(folder, "train", transform=dict(type="timm", is_train=True, input_size=64, uint8=True))
    item = ds[0]
    assert item["inputs"].dtype == torch.uint8 and item["inputs"].shape == (3, 64, 64)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=1)))
    assert batch["inputs"].dtype == torch.uint8 and batch["inputs"].shape == (4, 3, 64, 64)
    val = ImageNetFolder(folder, "val", transform=dict(type="timm", is_train=False, input_size=64, uint8=True))
    assert val[0]["inputs"].dtype == torch.uint8 and val[0]["inputs"].shape == (3, 64, 64)


@pytest.mark.parametrize("is_train", [False, True])
def test_device_normalisation_equals_float_path(folder, is_train):
    ds = ImageNetFolder(folder, "val")
    img = decode_rgb(ds.samples[0][0], ds.samples[0][0])
    kw = dict(is_train=is_train, input_size=64)
    as_uint8 = build_transform(uint8=True, **kw)
    as_float = build_transform(re_prob=0.0, **kw) if is_train else build_transform(**kw)
    pixels = _seeded(lambda: as_uint8(img), 3)  # same seed: same crop, flip and RandAugment draws
    expected = _seeded(lambda: as_float(img), 3)
    pre = ImageNetPreprocessor().to(DEVICE)
    out = pre(dict(inputs=pixels[None], data_samples=torch.tensor([1])), training=False)
    assert out["inputs"].dtype == torch.float32 and out["inputs"].device.type == DEVICE
    assert out["data_samples"].device.type == DEVICE
    torch.testing.assert_close(out["inputs"][0].cpu(), expected, atol=1e-6, rtol=0)


def test_uint8_transform_refuses_worker_erasing():
    with pytest.raises(ValueError, match="re_prob=0.25 with uint8=True"):
        build_transform(is_train=True, input_size=32, uint8=True, re_prob=0.25)


def test_normalize_rejects_float_and_bad_shape():
    mean = torch.zeros(1, 3, 1, 1)
    with pytest.raises(ValueError, match="expects a uint8 batch"):
        normalize_uint8(torch.zeros(1, 3, 4, 4), mean, mean + 1)
    with pytest.raises(ValueError, match=r"\(B,3,H,W\)"):
        normalize_uint8(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), mean, mean + 1)


def test_float_batches_pass_through_unerased():
    pre = ImageNetPreprocessor(re_prob=1.0).to(DEVICE)
    x = torch.randn(2, 3, 8, 8)
    out = pre(dict(inputs=x, data_samples=torch.tensor([0, 1])), training=True)
    torch.testing.assert_close(out["inputs"].cpu(), x, atol=0, rtol=0)


def test_random_erasing_statistics_on_the_device():
    """p = 0.25: about a quarter of the images get one rectangle of per-pixel N(0,1) noise covering 2–33% of the
    image (up to the rounding of its sides); eval batches are never erased."""
    n, side = 4000, 48
    pre = ImageNetPreprocessor(re_prob=0.25, re_mode="pixel").to(DEVICE)
    constant = torch.full((n, 3, side, side), 128, dtype=torch.uint8)
    random.seed(0)
    torch.manual_seed(0)
    out = pre(dict(inputs=constant, data_samples=torch.zeros(n, dtype=torch.long)), training=True)["inputs"]
    assert out.device.type == DEVICE
    clean = normalize_uint8(constant[:1].to(DEVICE), pre.mean, pre.std)
    out, clean = out.cpu(), clean.cpu()
    changed = (out != clean).any(dim=1)  # (n, side, side): erased pixels (N(0,1) never hits the constant)
    fraction = changed.flatten(1).float().mean(1).cpu()
    erased = fraction > 0
    rate = float(erased.float().mean())
    assert abs(rate - 0.25) < 0.04, rate
    rounding = (side + 0.25) / side ** 2  # |h·w − target| ≤ (h + w)/2 + 1/4 with h, w ≤ side
    assert float(fraction[erased].min()) >= 0.02 - rounding and float(fraction[erased].max()) <= 1 / 3 + rounding
    assert float(fraction[erased].min()) < 0.05 and float(fraction[erased].max()) > 0.25  # the whole range is used
    # the erased pixels are one axis-aligned rectangle per image, filled with standard-normal noise
    for i in torch.nonzero(erased).flatten()[:50].tolist():
        rows, cols = changed[i].any(1).nonzero().flatten(), changed[i].any(0).nonzero().flatten()
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(changed[i].sum()) == h * w
    noise = out[erased].permute(1, 0, 2, 3)[:, changed[erased]]
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 1) < 0.05
    evaluated = pre(dict(inputs=constant[:64], data_samples=torch.zeros(64, dtype=torch.long)), training=False)
    assert bool((evaluated["inputs"].cpu() == clean).all())


def test_config_builds_the_preprocessor_into_the_model():
    cfg = Config.fromfile(DEIT_T)
    assert cfg.train_dataloader.dataset.transform.uint8 and cfg.val_dataloader.dataset.transform.uint8
    pre = MODELS.build(cfg.data_preprocessor)
    assert isinstance(pre, ImageNetPreprocessor) and pre.re_prob == 0.25 and pre.re_mode == "pixel"


def test_runner_trains_deit_tiny_on_the_uint8_path(folder, tmp_path):
    from mmengine.runner import Runner
    from classification.engine.distributed import release_dataloader_workers
    cfg = Config.fromfile(DEIT_T)
    cfg.merge_from_dict({
        "work_dir": str(tmp_path / "work"), "model.num_classes": 2, "model.backbone.img_size": 64,
        "model.backbone.drop_path_rate": 0.0, "train_cfg.max_epochs": 1, "train_cfg.val_interval": 1,
        "default_hooks.checkpoint.save_best": None, "auto_scale_lr.enable": False,
        "default_hooks.logger.interval": 1, "val_evaluator.topk": (1,), "test_evaluator.topk": (1,),
    })
    for name, train in (("train_dataloader", True), ("val_dataloader", False)):
        loader = cfg[name]
        loader.update(batch_size=4, num_workers=1, persistent_workers=False)
        loader.dataset.root = folder
        loader.dataset.transform.input_size = 64
    cfg.test_dataloader = cfg.val_dataloader
    cfg.custom_hooks = []
    seen = []
    runner = Runner.from_cfg(cfg)
    pre = runner.model.data_preprocessor
    assert isinstance(pre, ImageNetPreprocessor) and pre.re_prob == 0.25
    pre.register_forward_hook(lambda _m, args, out: seen.append((args[0]["inputs"].dtype, out["inputs"].dtype)))
    runner.train()
    release_dataloader_workers(runner)
    assert runner.iter == 2  # 8 images / batch 4
    assert seen and all(s == (torch.uint8, torch.float32) for s in seen)
    scalars = runner.message_hub.log_scalars
    assert math.isfinite(scalars["train/loss"].current())
    assert "val/top1" in scalars


def test_robustness_builds_the_float_twin_of_a_uint8_transform(folder):
    from classification.experiments.robustness.evaluate import _build_pixel_dataset
    dataset, mean, std = _build_pixel_dataset(dict(type="ImageNetFolder", root=folder, split="val", transform=dict(
        type="timm", is_train=False, input_size=64, uint8=True)))
    pixels = dataset[0]["inputs"]
    assert pixels.dtype == torch.float32 and 0 <= float(pixels.min()) and float(pixels.max()) <= 1
    assert mean == pytest.approx((0.485, 0.456, 0.406)) and std == pytest.approx((0.229, 0.224, 0.225))
    uint8 = ImageNetFolder(folder, "val", transform=dict(type="timm", is_train=False, input_size=64, uint8=True))
    torch.testing.assert_close(pixels, uint8[0]["inputs"].float() / 255, atol=1e-6, rtol=0)

"""The MaskMix grid of tools/visualize.py draws training images across the classes, each mixed with a partner of
another class; what it draws are the mixed images (recomputed here from the unmixed images, the cell mask and the
partner), and the partner's cells are hatched and outlined, which shows on colour images too."""
import os
import os.path as osp
from collections import Counter

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import classification.register_all  # noqa: F401  (registration)
from classification.experiments.visualize import maskmix_grid, pick_across_classes

from classification.foundation.host import ROOT
FMNIST_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def drawn(monkeypatch):
    """What the grid hands to matplotlib: every imshow picture, contourf (hatched region) and contour call."""
    calls = {"imshow": [], "contourf": [], "contour": []}
    for name in calls:
        original = getattr(Axes, name)

        def record(self, data, *args, _name=name, _original=original, **kwargs):
            calls[_name].append((np.array(data), kwargs))
            return _original(self, data, *args, **kwargs)
        monkeypatch.setattr(Axes, name, record)
    return calls


def test_picks_alternate_between_classes_and_spread_over_them():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5 + [3] * 1)
    for seed in range(3):
        picked = pick_across_classes(labels, 10, seed)
        classes = labels[picked].tolist()
        assert len(set(picked.tolist())) == 10
        assert all(a != b for a, b in zip(classes, classes[1:])), classes
        counts = Counter(classes)
        assert counts[3] == 1 and counts[2] == 3 and counts[0] == counts[1] == 3  # taken in turn until used up
    assert pick_across_classes(labels, 10, 0).tolist() != pick_across_classes(labels, 10, 1).tolist()


def check_panels(grid, calls, channels):
    """Each drawn picture is the mixed image recomputed from the unmixed images; the hatched region is the partner's
    cells; the outline is drawn twice (dark under light)."""
    n = len(grid.labels)
    batch = grid.batch
    assert len(calls["imshow"]) == n and len(calls["contourf"]) == n and len(calls["contour"]) == 2 * n
    for i in range(n):
        j = int(batch.partner[i])
        assert grid.labels[j] != grid.labels[i], "a partner of the same class"
        own = batch.pixel_mask[i].bool().expand_as(grid.originals[i])
        mixed = torch.where(own, grid.originals[i], grid.originals[j])  # recomputed: own cells, else the partner's
        expected = (mixed - mixed.min()) / (mixed.max() - mixed.min() + 1e-8)
        picture, _ = calls["imshow"][i]
        assert picture.shape == ((*mixed.shape[1:], channels) if channels > 1 else tuple(mixed.shape[1:]))
        expected = expected.permute(1, 2, 0).numpy()
        np.testing.assert_allclose(picture, expected.squeeze(-1) if channels == 1 else expected, atol=1e-6)
        region, kwargs = calls["contourf"][i]
        np.testing.assert_array_equal(region, (~own[0]).numpy().astype(region.dtype))
        assert kwargs["hatches"] and 0 < region.mean() < 1
        colours = [calls["contour"][2 * i + k][1]["colors"] for k in range(2)]
        assert colours == ["black", "yellow"]


@pytest.mark.needs_data(FMNIST)
def test_fashion_mnist_grid(tmp_path, drawn):
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": MODELS.build(Config.fromfile(FMNIST_CONFIG).model).state_dict()}, ckpt)
    grid = maskmix_grid(FMNIST_CONFIG, str(ckpt), str(tmp_path / "grid.png"), num=8)
    assert len(set(grid.labels.tolist())) == 8, "eight panels of Fashion-MNIST's ten classes: all different"
    check_panels(grid, drawn, channels=1)


def test_colour_image_folder_grid(tmp_path, drawn):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        os.makedirs(tmp_path / "data" / "train" / name)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "data" / "train" / name / f"{i}.jpg")
    config = tmp_path / "colour.py"
    transform = 'dict(type="timm", is_train=False, input_size=32)'
    config.write_text(
        'custom_imports = dict(imports=["classification.register_all"], allow_failed_imports=False)\n'
        'model = dict(type="MixClassifier", num_classes=3, mix_defaults=dict(mask_size=8), '
        'mix=[dict(type="maskmix", prob=1.0)], label_policy=dict(type="PALLabels"), backbone=dict(type="tiny_vit", '
        'img_size=32, patch_size=8, in_chans=3, embed_dim=16, depth=1, num_heads=1))\n'
        f'train_dataloader = dict(dataset=dict(type="ImageNetFolder", root="{tmp_path / "data"}", split="train", '
        f'transform={transform}))\n'
        f'val_dataloader = dict(dataset=dict(type="ImageNetFolder", root="{tmp_path / "data"}", split="train", '
        f'transform={transform}))\n')
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": MODELS.build(Config.fromfile(str(config)).model).state_dict()}, ckpt)
    grid = maskmix_grid(str(config), str(ckpt), str(tmp_path / "grid.png"), num=6)
    assert sorted(Counter(grid.labels.tolist()).values()) == [2, 2, 2]
    check_panels(grid, drawn, channels=3)

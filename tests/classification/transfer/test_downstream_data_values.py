"""Each option of the composite generator changes its output as docs/methods.md ("Generated downstream data") says,
and nothing else: ``background_brightness`` multiplies the background photo, ``tint_min`` bounds every tint channel
from below, ``min_visible_area`` drops the COCO annotations of smaller objects. The same seed with and without an
option draws the same scene (the options consume no randomness), so the two outputs are compared pixel by pixel.

The exact checks run the composer on synthetic inputs (a random photo, solid-square "garments" whose interior pixels
carry the tint unblended); the end-to-end ones run ``make_composite`` on Fashion-MNIST through the JPEG files.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from classification.data.fashion_mnist import FASHION_MNIST_ROOT
from classification.transfer.downstream_data import composite

needs_fmnist = pytest.mark.needs_data(os.path.join(FASHION_MNIST_ROOT, "t10k-images-idx3-ubyte.gz"))
SIZE = 48


def _inputs():
    """A random photo and 5 garments: 28×28 images of a solid 255 square (rows/cols 4..23) with labels 0..4."""
    rng = np.random.default_rng(5)
    photos = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)]
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = 255
    return photos, images, np.arange(5)


def _scenes(n=40, **options):
    """``n`` composed images (rgb (S,S,3), label map, owner, classes) from seed 0 with the given options."""
    photos, images, labels = _inputs()
    rng = np.random.default_rng(0)
    return [composite._compose(rng, photos, images, labels, SIZE, **options) for _ in range(n)]


def _interior(owner: np.ndarray, k: int) -> np.ndarray:
    """Pixels of object ``k`` whose 3×3 neighbourhood is all object ``k``: inside the solid square, alpha 1 (no
    background shows through); the brightest of them, per channel, is the tint itself (normalised intensity 1)."""
    mine = owner == k
    pad = np.pad(mine, 1)
    return np.all([pad[1 + dy:1 + dy + mine.shape[0], 1 + dx:1 + dx + mine.shape[1]]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)


def test_background_brightness_multiplies_the_photo_and_only_it():
    plain, dim = _scenes(), _scenes(brightness=0.3)
    for (rgb1, lab1, own1, cls1), (rgb3, lab3, own3, cls3) in zip(plain, dim):
        assert np.array_equal(lab1, lab3) and np.array_equal(own1, own3) and cls1 == cls3  # the same scene
        background = own1 == -1
        assert background.any()
        # rint(0.3·x) vs 0.3·rint(x): at most 0.5 + 0.15 apart
        assert np.abs(rgb3[background] - 0.3 * rgb1[background].astype(float)).max() <= 0.65
        for k in range(len(cls1)):
            inside = _interior(own1, k)
            assert np.array_equal(rgb1[inside], rgb3[inside])  # opaque object pixels do not dim


def test_tint_min_bounds_every_tint_channel_from_below_and_changes_nothing_else():
    free, bright = _scenes(), _scenes(tint_min=200)
    lowest = []
    for (rgb0, lab0, own0, cls0), (rgb2, lab2, own2, cls2) in zip(free, bright):
        assert np.array_equal(lab0, lab2) and np.array_equal(own0, own2) and cls0 == cls2
        background = own0 == -1
        assert np.array_equal(rgb0[background], rgb2[background])
        for k in range(len(cls0)):
            inside = _interior(own0, k)
            if inside.any():
                assert rgb2[inside].max(0).min() >= 200, k  # each tint channel uniform in [200, 255]
                lowest.append(rgb0[inside].max(0).min())
    assert len(lowest) > 30 and min(lowest) < 100  # without the option, tints below 200 do occur


@needs_fmnist
def test_make_composite_passes_each_option_through(tmp_path):
    """End to end (JPEG files, COCO json): dimmed backgrounds, brighter objects, fewer annotations."""
    def make(name, **options):
        out = tmp_path / name
        composite.make_composite(str(out), num_train=0, num_val=6, size=64, seed=3, verbose=False, **options)
        images = [np.asarray(Image.open(out / "images/validation" / f"{i:06d}.jpg"), dtype=float) for i in range(6)]
        labels = [np.asarray(Image.open(out / "annotations/validation" / f"{i:06d}.png")) for i in range(6)]
        coco = json.loads((out / "annotations/instances_val.json").read_text())
        return np.stack(images), np.stack(labels), coco["annotations"]

    rgb, labels, anns = make("plain", min_visible_area=0)
    rgb_dim, labels_dim, _ = make("dim", background_brightness=0.3, min_visible_area=0)
    rgb_tint, labels_tint, _ = make("tint", tint_min=200, min_visible_area=0)
    _, _, anns_big = make("area", min_visible_area=150)
    assert np.array_equal(labels, labels_dim) and np.array_equal(labels, labels_tint)
    background = labels == 0
    assert rgb_dim[background].mean() / rgb[background].mean() == pytest.approx(0.3, abs=0.03)
    objects = labels > 0
    assert rgb_tint[objects].mean() > rgb[objects].mean() + 20
    assert np.abs(rgb_tint[background] - rgb[background]).mean() < 3  # JPEG blocks at object edges only
    small = [a for a in anns if a["area"] < 150]
    assert 0 < len(small) < len(anns)  # the threshold splits this set
    assert [(a["image_id"], a["area"]) for a in anns_big] == [(a["image_id"], a["area"]) for a in anns
                                                              if a["area"] >= 150]

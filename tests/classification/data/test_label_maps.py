"""TokenMix's teacher label maps in the data pipeline (classification.data.label_maps; docs/methods.md, "TokenMix"):
the transform moves the map's peak where the image's planted patch goes, a RandAugment geometric op moves the map
as the official code does, a missing or malformed map is one line naming the file, the classifier refuses batches
without the maps its method reads, and the DeiT TokenMix config trains two iterations on a generated folder."""
import math
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from PIL import Image

import classification.register_all  # noqa: F401  (registration)
from classification.data.label_maps import (ImageNetLabelMaps, LabelMapError, LabelMapTransform, affine_label_map,
                                            label_map_path, load_label_map)
from classification.foundation.errors import MissingPathError, UserError
from mixpro_core.tokenmix import gt_token_maps

from classification.foundation.host import ROOT
W, H, CELLS, ROW, COL, SIZE, GRID = 96, 64, 8, 2, 5, 32, 4  # image W×H, an 8×8 map, the peak cell, 32 px → 4×4 tokens


def planted():
    """An image with one bright map cell (12×8 px at row 2, column 5) and a top-2 map whose class 3 peaks there."""
    pixels = np.zeros((H, W, 3), np.uint8)
    ch, cw = H // CELLS, W // CELLS
    pixels[ROW * ch:(ROW + 1) * ch, COL * cw:(COL + 1) * cw] = 255
    scores = torch.zeros(2, CELLS, CELLS)
    scores[0, ROW, COL] = 1.0
    scores[1] = 0.01
    indices = torch.stack([torch.full((CELLS, CELLS), 3), torch.full((CELLS, CELLS), 1)])
    return Image.fromarray(pixels), scores, indices


def image_token(image):
    """(row, column, margin) of the token holding the bright patch's centroid; margin = its distance to the nearest
    token border in tokens (None when the patch is cut by the crop's edge)."""
    bright = image.mean(0) > 0.5
    if not bright.any() or bright[0].any() or bright[-1].any() or bright[:, 0].any() or bright[:, -1].any():
        return None
    ys, xs = torch.nonzero(bright, as_tuple=True)
    cy, cx = (ys.float().mean() + 0.5) * GRID / SIZE, (xs.float().mean() + 0.5) * GRID / SIZE
    margin = min(abs(cy - round(float(cy))), abs(cx - round(float(cx))))
    return int(cy), int(cx), float(margin)


def hand_token(scores, box):
    """The token of the map's peak, by hand: the peak cell's centre as a fraction of the map, placed in the box."""
    cell = int(torch.argmax(scores[0]))
    v, u = (cell // CELLS + 0.5) / CELLS, (cell % CELLS + 0.5) / CELLS
    x0, y0, x1, y1 = box.tolist()
    return math.floor((v - y0) / (y1 - y0) * GRID), math.floor((u - x0) / (x1 - x0) * GRID)


def test_the_map_peak_goes_where_the_planted_patch_goes():
    transform = LabelMapTransform(input_size=SIZE, scale=(0.3, 1.0), auto_augment=None, color_jitter=None,
                                  interpolation="bilinear", mean=(0, 0, 0), std=(1, 1, 1), re_prob=0)
    img, scores, indices = planted()
    seen = {"flipped": 0, "kept": 0}
    for seed in range(60):
        torch.manual_seed(seed)
        out, s, ids, box = transform(img, scores.clone(), indices.clone())
        found = image_token(out)
        if found is None or found[2] < 0.15:
            continue  # the patch cut by the crop, or its centre too near a token border to tell
        flipped = int(torch.argmax(s[0])) % CELLS != COL
        seen["flipped" if flipped else "kept"] += 1
        assert found[:2] == hand_token(s, box), seed
        token_map = gt_token_maps(s[None], ids[None], torch.tensor([3]), box[None], (GRID, GRID))[0]
        assert divmod(int(torch.argmax(token_map)), GRID) == found[:2], seed
        assert torch.equal(ids[:, 0, 0], torch.tensor([3, 1]))
    assert seen["flipped"] >= 5 and seen["kept"] >= 5, seen


def test_a_randaugment_translation_moves_the_map_as_the_official_code():
    # the official map affine (ndimage, nearest cell): output cell (r, c) reads input (r, c + 2)
    scores, indices = torch.zeros(1, 4, 4), torch.arange(16).view(1, 4, 4)
    scores[0, 1, 3] = 1.0
    moved, ids = affine_label_map(scores, indices, (1, 0, 0, 0, 1, 2))
    assert int(torch.argmax(moved[0])) == 1 * 4 + 1
    assert ids[0, 0].tolist() == [2, 3, 3, 3]  # ids continue the edge, scores are 0 outside
    assert moved[0, :, 2:].sum() == 0


@pytest.mark.parametrize("name", ["TranslateXRel", "TranslateYRel"])
def test_a_randaugment_translation_moves_image_and_map_together(name):
    """The whole image as the crop, no flip, RandAugment reduced to one translation (±40.5% at m9): the map's peak
    (moved by the official map affine) lands in the token where the image's patch went."""
    transform = LabelMapTransform(input_size=SIZE, scale=(1.0, 1.0), ratio=(W / H, W / H), hflip=0.0,
                                  auto_augment="rand-n1-m9-mstd0-inc1", interpolation="bilinear", mean=(0, 0, 0),
                                  std=(1, 1, 1), re_prob=0)
    (op,) = [op for op in transform.augment.ops if op.name == name]
    op.prob, transform.augment.ops = 1.0, [op]
    img, scores, indices = planted()
    checked = 0
    for seed in range(12):
        random.seed(seed)
        torch.manual_seed(seed)
        out, s, _, box = transform(img, scores.clone(), indices.clone())
        assert [n for n, _ in transform._applied] == [name] and box.tolist() == [0.0, 0.0, 1.0, 1.0]
        found = image_token(out)
        if found is None or found[2] < 0.1:
            continue  # translated out of the image, or too near a token border
        assert int(torch.argmax(s[0])) != ROW * CELLS + COL, "the map did not move"
        assert found[:2] == hand_token(s, box), seed
        checked += 1
    assert checked >= 3


def make_folder(root, label_root, shape=(2, 5, 8, 8), skip=None):
    """2 classes × 4 training images (and 2 × 1 validation) with one TokenLabeling map per training image."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 1)):
        for wnid in ("n001", "n002"):
            os.makedirs(osp.join(root, split, wnid), exist_ok=True)
            for i in range(count):
                path = osp.join(root, split, wnid, f"{wnid}_{i}.JPEG")
                Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)).save(path)
                target = label_map_path(label_root, path)
                if split == "train" and target != skip:
                    os.makedirs(osp.dirname(target), exist_ok=True)
                    data = torch.rand(*shape)
                    data[1] = torch.randint(0, 2, shape[1:]).float()
                    torch.save(data.half(), target)


def test_label_map_paths_follow_the_official_naming():
    assert label_map_path("/maps", "/data/train/n01440764/n01440764_10026.JPEG") == "/maps/n01440764/n01440764_10026.pt"


def test_a_missing_or_malformed_map_is_one_line_naming_the_file(tmp_path):
    maps = tmp_path / "maps"
    missing = str(maps / "n001" / "n001_1.pt")
    make_folder(str(tmp_path / "data"), str(maps), skip=missing)
    ds = ImageNetLabelMaps(str(tmp_path / "data"), str(maps), transform=dict(type="token_label", input_size=32))
    sample = ds[0]
    assert sample["data_samples"]["label_scores"].shape == (5, 8, 8)
    assert sample["data_samples"]["label_indices"].dtype == torch.int64
    with pytest.raises(LabelMapError) as err:
        ds[1]
    assert str(err.value).startswith(f"{missing}: label map not found") and "\n" not in str(err.value)
    torch.save(torch.zeros(5, 8, 8), missing)
    with pytest.raises(LabelMapError, match=r"label map of shape \(5, 8, 8\), expected a \(2, k, H', W'\) tensor"):
        load_label_map(missing)
    with pytest.raises(MissingPathError, match="label map folder /nowhere does not exist"):
        ImageNetLabelMaps(str(tmp_path / "data"), "/nowhere")


def tokenmix_config(tmp_path):
    from mmengine.config import Config
    data, maps = str(tmp_path / "data"), str(tmp_path / "maps")
    make_folder(data, maps)
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification/deit-t_tokenmix_8xb128-300e_in1k.py"))
    cfg.model.num_classes = 2
    cfg.model.method.switch_prob = 1.0  # every step reads the maps
    cfg.model.backbone = dict(type="tiny_vit", img_size=SIZE, patch_size=8, in_chans=3, embed_dim=16, depth=1,
                              num_heads=1)
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False, pin_memory=False)
    cfg.train_dataloader.dataset.update(root=data, label_root=maps)
    cfg.train_dataloader.dataset.transform.input_size = SIZE
    cfg.val_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False)
    cfg.val_dataloader.dataset.update(root=data, transform=dict(type="timm", is_train=False, input_size=SIZE,
                                                                uint8=True))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type="TopKAccuracy", topk=(1,))
    return cfg


def test_the_deit_tokenmix_config_trains_two_iterations_on_generated_maps(tmp_path):
    from classification.engine import launch, lifecycle
    cfg = launch.prepare_config(tokenmix_config(tmp_path), work_dir=str(tmp_path / "work"), epochs=1)
    lifecycle.run(cfg)
    log = "".join(open(p).read() for p in (tmp_path / "work").glob("*/*.log"))
    assert "Epoch(train) [1][2/2]" in log and "loss: nan" not in log


def test_the_classifier_refuses_batches_without_the_maps_its_method_reads(tmp_path):
    from mmengine.registry import MODELS
    cfg = tokenmix_config(tmp_path)
    model = MODELS.build(cfg.model)
    x, y = torch.randn(2, 3, SIZE, SIZE), torch.tensor([0, 1])
    with pytest.raises(UserError, match="'tokenmix-area', the teacher-free variant"):
        model(x, y, mode="loss")
    area = MODELS.build(dict(cfg.model, method=dict(type="tokenmix-area", switch_prob=1.0)))
    with pytest.raises(UserError, match="carry label_scores, which TokenMixArea does not read"):
        area(x, dict(labels=y, label_scores=torch.zeros(2, 5, 8, 8)), mode="loss")

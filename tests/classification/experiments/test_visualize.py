"""The MaskMix grid of tools/visualize.py (also written by `make demo`): every panel is mixed, across a range of λ,
and the checkpoint is loaded strictly."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import classification.register_all  # noqa: F401  (registration)
from classification.foundation.checkpoints import CheckpointMismatchError
from classification.experiments.visualize import maskmix_grid, maskmix_range, other_class_partners

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
P4_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit-p4_mixpro_1xb128-20e_fmnist.py")


def assert_every_panel_mixed(batch, originals):
    """The data behind the picture: each panel has own and partner pixels, and differs from its unmixed image."""
    assert ((batch.lam_area > 0) & (batch.lam_area < 1)).all(), batch.lam_area
    own = batch.pixel_mask.bool().expand_as(originals)
    for i in range(len(originals)):
        assert torch.equal(batch.images[i][own[i]], originals[i][own[i]]), f"panel {i}: own pixels changed"
        partner = originals[batch.partner[i]]
        assert torch.equal(batch.images[i][~own[i]], partner[~own[i]]), f"panel {i}: not the partner's pixels"
        assert not torch.equal(batch.images[i], originals[i]), f"panel {i} shows its unmixed image"


def test_maskmix_range_mixes_every_sample_from_low_to_high_lambda():
    images = torch.rand(16, 1, 32, 32)
    labels = torch.tensor([0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9, 9, 1, 2])
    partner = other_class_partners(labels)
    assert (labels[partner] != labels).all()
    for seed in range(3):  # whatever the seed (it picks the cells), λ stays spread and every panel mixed
        batch = maskmix_range(images, partner, mask_size=8, patch_size=8, seed=seed)
        assert_every_panel_mixed(batch, images)
        cells = (batch.lam_area * 16).round()
        assert cells.tolist() == torch.linspace(1, 15, 16).round().tolist()  # 1/16 … 15/16, non-decreasing
        assert torch.equal(batch.token_mask.mean(1), batch.lam_area)
    with pytest.raises(ValueError, match="single MaskMix cell"):
        maskmix_range(images, partner, mask_size=32, patch_size=8)


@pytest.mark.needs_data("/usr/share/datasets/fashion-mnist")
def test_maskmix_grid_shows_mixed_images_with_their_lambdas(tmp_path):
    model = MODELS.build(Config.fromfile(CONFIG).model)
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    out = tmp_path / "grid.png"
    grid = maskmix_grid(CONFIG, str(ckpt), str(out), num=8)
    assert_every_panel_mixed(grid.batch, grid.originals)
    assert grid.lam_attn.shape == grid.lam.shape == (8,)
    assert ((grid.lam_attn >= 0) & (grid.lam_attn <= 1)).all() and ((grid.lam >= 0) & (grid.lam <= 1)).all()
    assert grid.batch.lam_area[0] < 0.2 and grid.batch.lam_area[-1] > 0.8
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 400 and im.height > 150
    other = tmp_path / "p4.pth"  # a checkpoint of another architecture (patch 4): refused before any picture
    torch.save({"state_dict": MODELS.build(Config.fromfile(P4_CONFIG).model).state_dict()}, other)
    refusal = (r"does not fit VisionTransformer: .*patch_embed\.proj\.weight \(checkpoint \(64, 1, 4, 4\), "
               r"model \(64, 1, 8, 8\)\)")
    with pytest.raises(CheckpointMismatchError, match=refusal):
        maskmix_grid(CONFIG, str(other), str(tmp_path / "p4.png"), num=8)
    assert not (tmp_path / "p4.png").exists()

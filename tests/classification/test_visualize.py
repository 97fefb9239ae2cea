"""The MaskMix grid of tools/visualize.py (also written by `make demo`)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import classification  # noqa: F401
from classification.visualize import maskmix_grid

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")


@pytest.mark.needs_data("/usr/share/datasets/fashion-mnist")
def test_maskmix_grid_png(tmp_path):
    model = MODELS.build(Config.fromfile(CONFIG).model)
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    out = maskmix_grid(CONFIG, str(ckpt), str(tmp_path / "grid.png"), num=8)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 400 and im.height > 150

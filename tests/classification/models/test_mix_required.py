"""A MixClassifier's mixing is stated, never defaulted (issue #33): a config with neither ``model.mix`` nor
``model.method`` (a leaf that forgot ``model = dict(_base_.method)``) ends in one ``error:`` line naming the key before
anything is built, and the model refuses to be built without it; ``mix=None`` (the ``none`` method base) says "no
mixing" once at build and trains on the clean batch: its loss is the label-smoothed cross-entropy of the logits."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.engine import launch
from classification.engine.config_check import validate_training_config
from classification.models import mix_classifier
from mixpro_core import METHODS

from classification.foundation.host import ROOT
BASE = osp.join(ROOT, "configs/classification/_base_")
TINY = dict(type="MixClassifier", num_classes=10,
            backbone=dict(type="tiny_vit", img_size=16, patch_size=4, in_chans=1, embed_dim=16, depth=1, num_heads=2,
                          drop_path_rate=0.0))


def test_a_leaf_without_its_method_line_is_one_error_naming_model_mix(tool, tmp_path):
    leaf = tmp_path / "tiny-vit_forgot_1xb128-20e_fmnist.py"
    leaf.write_text(f'_base_ = ["{BASE}/models/tiny-vit-fmnist.py", "{BASE}/datasets/fashion_mnist_bs128.py", '
                    f'"{BASE}/schedules/adamw_fmnist.py", "{BASE}/default_runtime.py", "{BASE}/methods/mixpro.py"]\n')
    line = tool(launch.main, [str(leaf), "--work-dir", str(tmp_path / "work")])
    assert line.startswith("error: model.mix is not set: apply a method base (model = dict(_base_.method)"), line
    assert "or set model.mix=None to train without mixing" in line
    cfg = Config.fromfile(str(leaf))
    cfg.model.mix = None  # stated: no error, whatever the batch size
    cfg.train_dataloader.batch_size = 1
    validate_training_config(cfg)
    del cfg.model["mix"]
    cfg.model.method = dict(type="tlalign")  # a method of its own needs no mix
    validate_training_config(cfg)


def test_the_model_is_not_built_without_mix_or_method():
    with pytest.raises(ValueError, match=r"^model.mix is required: a list of mixers, None for no mixing, or "
                                         r"model.method$"):
        MODELS.build(TINY)
    assert type(MODELS.build(dict(TINY, method=dict(type="tlalign"))).method) is METHODS.get("tlalign")


def test_mix_none_logs_no_mixing_once_and_trains_on_the_clean_batch(monkeypatch):
    logged = []
    monkeypatch.setattr(mix_classifier, "print_log", lambda msg, **kw: logged.append(msg))
    MODELS.build(dict(TINY, mix=[dict(type="mixup", prob=1.0)]))
    assert logged == []
    torch.manual_seed(0)
    model = MODELS.build(dict(TINY, mix=None))
    assert logged == ["no mixing"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    losses = []
    for _ in range(3):
        loss = model(x, y, mode="loss")["loss"]
        torch.testing.assert_close(loss, F.cross_entropy(model(x, mode="tensor"), y, label_smoothing=0.1))
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[2] < losses[0]

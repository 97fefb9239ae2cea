"""The method contract (mixpro_core.method): the classifier calls any registered method the same way, old
checkpoints load into the method's children, configs that mix the two ways of naming a method are refused, and every
label policy refuses logits of another class count (naming both)."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from mixpro_core import (METHODS, AreaLabels, Method, MethodResult, PALLabels, TransMixLabels, cutmix, maskmix,
                         soft_target_cross_entropy)

BASE = dict(type="MixClassifier", num_classes=10,
            backbone=dict(type="tiny_vit", img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                          drop_path_rate=0.0))


@pytest.mark.parametrize("policy", [AreaLabels(1000), TransMixLabels(1000), PALLabels(num_classes=1000)])
def test_policies_refuse_logits_of_another_class_count(policy):
    images = torch.randn(4, 1, 8, 8)
    batch = maskmix(images, mask_size=4, patch_size=4) if isinstance(policy, PALLabels) else cutmix(images)
    with pytest.raises(ValueError, match=r"num_classes=1000 but the model's logits have 10 classes"):
        policy(batch, torch.randn(4, 10), torch.rand(4, 4), torch.tensor([0, 1, 2, 3]))


def test_a_config_naming_a_method_and_schedule_keys_is_refused():
    with pytest.raises(ValueError, match=r"model.method \('schedule'\) replaces the keys \['label_policy', 'mix'\]"):
        MODELS.build({**BASE, "method": dict(type="schedule"), "mix": [], "label_policy": dict(type="AreaLabels")})
    with pytest.raises(ValueError, match=r"method \(schedule\): unknown key\(s\) \['mixx'\]"):
        MODELS.build({**BASE, "method": dict(type="schedule", mixx=[])})
    with pytest.raises(ValueError, match=r"method \(schedule\): unknown key\(s\) \['num_classes'\]"):
        MODELS.build({**BASE, "method": dict(type="schedule", num_classes=3)})  # context values come from the model


class Scaled(Method):
    """A method of the test: CE of the unmixed batch times a learned scalar (an extra parameter of the method)."""

    def __init__(self, backbone, num_classes, smoothing=0.1, start=2.0):
        super().__init__(num_classes, smoothing)
        self.scale = nn.Parameter(torch.tensor(start))
        self.width = backbone.embed_dim  # inspected, not registered

    def forward(self, backbone, images, labels, generator=None):
        logits = backbone(images)
        ce = soft_target_cross_entropy(logits, nn.functional.one_hot(labels, self.num_classes).float())
        return MethodResult(self.scale * ce, torch.ones(len(labels)), dict(scale=self.scale.detach()))


def test_a_registered_method_is_called_by_the_classifier_and_owns_its_parameters(monkeypatch):
    monkeypatch.setitem(METHODS._entries, "scaled", Scaled)
    model = MODELS.build({**BASE, "method": dict(type="scaled", start=3.0), "smoothing": 0.0})
    assert model.method.width == 16 and not any(k.startswith("method.backbone") for k in model.state_dict())
    assert "method.scale" in model.state_dict() and any(p is model.method.scale for p in model.parameters())
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    out = model(x, y, mode="loss")
    torch.testing.assert_close(out["loss"], 3.0 * nn.functional.cross_entropy(model.backbone(x), y))
    assert set(out) == {"loss", "scale"} and int(model.mix_step) == 1
    out["loss"].backward()
    assert model.method.scale.grad is not None


def test_checkpoints_saved_before_the_contract_load_into_the_method():
    """RL-Mix's state and HTM's ScoreNets were saved as mixer.* / token_mixup.*; they now live under method.*."""
    cfg = {**BASE, "mix": [dict(type="cutmix", prob=1.0)], "token_mixup": dict(type="htm", layer=1)}
    torch.manual_seed(0)
    a = MODELS.build(cfg)
    torch.manual_seed(1)
    b = MODELS.build(cfg)
    old = {(k[len("method."):] if k.startswith("method.") else k): v for k, v in a.state_dict().items()}
    assert "token_mixup.horizontal.0.fc.weight" in old
    b.load_state_dict(old)  # strict
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key

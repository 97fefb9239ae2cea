"""MixClassifier refuses training batches that carry per-sample inputs its method does not read, naming the registered
methods whose ``EXTRAS`` hold them (read from ``mixpro_core.METHODS``, so a new method with extras is named too)."""
import pytest
import torch
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.foundation.errors import UserError
from mixpro_core import METHODS, Method, MethodResult

MODEL = dict(type="MixClassifier", num_classes=10, mix=None,
             backbone=dict(type="tiny_vit", img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2))
X, Y = torch.randn(2, 1, 16, 16), torch.tensor([0, 1])
MAPS = dict(label_scores=torch.zeros(2, 5, 4, 4), label_indices=torch.zeros(2, 5, 4, 4, dtype=torch.long),
            crop_box=torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2))


class DepthMix(Method):
    """A method of the test reading a depth map and TokenMix's crop box."""
    EXTRAS = ("depth", "crop_box")

    def forward(self, backbone, images, labels, generator=None, extras=None):
        return MethodResult(backbone(images).sum(), torch.ones(len(labels)), {})


def refusal(batch_extras) -> str:
    model = MODELS.build(MODEL)
    with pytest.raises(UserError) as error:
        model(X, dict(labels=Y, **batch_extras), mode="loss")
    return str(error.value)


def test_label_maps_without_tokenmix_name_tokenmix():
    assert refusal(MAPS) == ("the training batches carry crop_box, label_indices, label_scores, which ScheduleMethod "
                             "does not read: use a dataset without them or a method that reads them (tokenmix)")


def test_a_method_registered_with_extras_is_named_with_the_others(monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))  # the registration ends with the test
    METHODS.register("depthmix-test")(DepthMix)
    depth = torch.zeros(2, 1, 16, 16)
    assert refusal(dict(depth=depth)) == ("the training batches carry depth, which ScheduleMethod does not read: use "
                                          "a dataset without them or a method that reads them (depthmix-test)")
    assert refusal(dict(crop_box=MAPS["crop_box"])) == (
        "the training batches carry crop_box, which ScheduleMethod does not read: use a dataset without them or a "
        "method that reads them (depthmix-test, tokenmix)")
    assert refusal(dict(depth=depth, label_scores=MAPS["label_scores"])) == (
        "the training batches carry depth, label_scores, which ScheduleMethod does not read: use a dataset without "
        "them (no registered method reads them)")
    monkeypatch.undo()
    assert "depthmix-test" not in METHODS and "tokenmix" in METHODS

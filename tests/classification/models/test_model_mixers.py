"""MixClassifier with a model-aware mixer (R-Mix) and TokenMixup (HTM / VTM); the CIFAR reader of their configs."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.data.cifar import CIFAR
from classification.engine.config_check import validate_training_config
from mixpro_core import AreaLabels, mixed_targets, rmix, soft_target_cross_entropy

BASE = dict(type="MixClassifier", num_classes=10,
            backbone=dict(type="tiny_vit", img_size=16, patch_size=4, embed_dim=16, depth=3, num_heads=2,
                          drop_path_rate=0.0),
            mix=[])


def test_rmix_step_is_area_labels_on_the_rmix_batch():
    model = MODELS.build({**BASE, "mix": [dict(type="rmix", prob=1.0, alpha=1.0, grid=2)]})
    model.eval()  # no dropout, so the two forwards agree
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    generator = model._mix_generator()
    loss = model(x, y, mode="loss")["loss"]
    batch = rmix(x, y, model.backbone, 1.0, 2, generator, num_classes=10)
    assert batch.kind == "rmix"
    torch.testing.assert_close(loss, AreaLabels(10)(batch, model.backbone(batch.images), None, y).loss)
    assert all(p.grad is None for p in model.parameters())  # the saliency pass left no gradients behind


def test_htm_step_loss_and_parameters_live_beside_the_backbone():
    model = MODELS.build({**BASE, "token_mixup": dict(type="htm", layer=1, tau=10.0, rho=0.0, lambda_sn=0.5)})
    keys = [k for k in model.state_dict() if not k.startswith("backbone.") and k != "mix_step"]
    assert keys and all(k.startswith("method.token_mixup.horizontal.0.") for k in keys)
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    seen = {}
    result = model.method.token_mixup.result
    model.method.token_mixup.result = lambda context: seen.setdefault("htm", result(context))
    handle = model.backbone.register_forward_hook(lambda m, i, o: seen.update(logits=o))
    out = model(x, y, mode="loss")
    handle.remove()
    assert set(out) == {"loss", "scorenet", "htm_mixed"} and float(out["htm_mixed"]) > 0
    # HTM's targets replace the area labels and its ScoreNet loss is added
    htm = seen["htm"]
    torch.testing.assert_close(out["loss"], soft_target_cross_entropy(seen["logits"], htm.targets) + htm.scorenet)
    assert not torch.equal(htm.targets, mixed_targets(y, torch.arange(4), torch.ones(4), 10, 0.1))
    del model.method.token_mixup.result
    out["loss"].backward()
    assert model.method.token_mixup.horizontal[0].fc.weight.grad is not None
    assert all(p.grad is not None for p in model.backbone.parameters())
    # eval mode: HTM and the ScoreNet step aside, the loss is the plain soft-target CE
    model.eval()
    out = model(x, y, mode="loss")
    torch.testing.assert_close(out["loss"], soft_target_cross_entropy(model.backbone(x), mixed_targets(
        y, torch.arange(4), torch.ones(4), 10, 0.1)))
    assert float(out["scorenet"]) == 0.0


def test_wrapper_rejects_bad_token_method_configs():
    with pytest.raises(ValueError, match="cannot be combined with PALLabels"):
        MODELS.build({**BASE, "token_mixup": dict(type="htm", layer=1), "label_policy": dict(type="PALLabels")})
    with pytest.raises(ValueError, match="grad_checkpointing"):
        MODELS.build({**BASE, "token_mixup": dict(type="vtm", layer=1, kappa=2), "grad_checkpointing": True})
    with pytest.raises(ValueError, match="VTM at the last block"):
        MODELS.build({**BASE, "token_mixup": dict(type="vtm", layer=2, kappa=2),
                      "label_policy": dict(type="TransMixLabels")})
    with pytest.raises(ValueError, match="mixer type must be one of"):
        MODELS.build({**BASE, "mix": [dict(type="saliencymix", prob=1.0)]})
    with pytest.raises(ValueError, match="mixer \\(rmix\\): unknown key"):
        MODELS.build({**BASE, "mix": [dict(type="rmix", prob=1.0, alpah=1.0)]})
    cfg = Config(dict(model={**BASE, "mix": [dict(type="rmix", prob=1.0)]},
                      train_dataloader=dict(batch_size=8, drop_last=False)))
    with pytest.raises(ValueError, match="drop_last"):
        validate_training_config(cfg)


def write_fake_cifar(root, n_train=6, n_test=4):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(range(n)),
                 "coarse_labels": [0] * n, "filenames": [f"img_{i}.png" for i in range(n)]}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    return entry


def test_cifar_reader(tmp_path):
    test_entry = write_fake_cifar(tmp_path)
    ds = CIFAR(str(tmp_path), split="test")
    assert len(ds) == 4 and ds.num_classes == 100
    item = ds[1]
    assert item["data_samples"] == 1 and item["inputs"].shape == (3, 32, 32)
    expected = torch.from_numpy(test_entry["data"][1].reshape(3, 32, 32)).float() / 255
    torch.testing.assert_close(item["inputs"], expected)
    assert len(CIFAR(str(tmp_path / "cifar-100-python"), split="train")) == 6
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        CIFAR(str(tmp_path), split="train", num_classes=10)


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with open(folder / "test", "wb") as f:
        pickle.dump({"data": Evil(), "fine_labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        CIFAR(str(tmp_path), split="test")

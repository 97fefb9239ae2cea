"""Classifier contract, the mmengine model wrapper, every shipped config's training step, metric, weights, engine."""
import glob
import math
import os
import os.path as osp
import pickle
import re
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification.register_all  # noqa: F401  (registration)
from classification.evaluation.accuracy import TopKAccuracy, topk_correct
from classification.foundation.atomic_backend import AtomicLocalBackend
from classification.foundation.checkpoints import CheckpointMismatchError, load_checkpoint_file
from classification.foundation.errors import UserError
from classification.models import ca_swin, vits
from classification.models.pretrained import load_pretrained
from mixpro_core import METHODS, forward_with_attention, has_cls_attention, maskmix, token_stride

from classification.foundation.host import ROOT
CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs/classification/*.py")))


def slow_class_attention(model, last_block, x):
    """Materialised CLS→patch class-attention of ``last_block`` (CaiT / XCiT), head-averaged."""
    seen = {}
    handle = last_block.attn.register_forward_pre_hook(lambda m, inp: seen.setdefault("u", inp[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    attn, u = last_block.attn, seen["u"]
    b, t, c = u.shape
    h = attn.num_heads
    q = attn.q(u[:, 0]).reshape(b, h, 1, c // h)
    k = attn.k(u).reshape(b, t, h, c // h).transpose(1, 2)
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1)[:, :, 0, 1:].mean(1)


@pytest.mark.parametrize("factory,blocks,size,stride", [(vits.cait_xxs36, "blocks_token_only", 32, 16),
                                                        (vits.xcit_tiny24, "cls_attn_blocks", 32, 16),
                                                        (ca_swin.ca_swin_tiny, "blocks_token_only", 64, 32)])
def test_class_attention_families_match_slow_path(factory, blocks, size, stride):
    torch.manual_seed(0)
    model = factory(img_size=size, num_classes=5).eval()
    x = torch.randn(2, 3, size, size)
    logits, cls_attn = forward_with_attention(model, x)
    assert logits.shape == (2, 5) and cls_attn.shape == (2, 4) and token_stride(model) == stride
    torch.testing.assert_close(cls_attn, slow_class_attention(model, getattr(model, blocks)[-1], x), atol=1e-5,
                               rtol=0)
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("factory,size,stride,tokens", [
    (vits.deit_tiny, 32, 16, 4), (vits.deit_tiny_patch14, 56, 14, 16), (vits.tiny_vit, 28, 4, 49)])
def test_vit_family_contract(factory, size, stride, tokens):
    kw = dict(img_size=size, num_classes=7) if factory is not vits.tiny_vit else dict(num_classes=7)
    model = factory(**kw)
    chans = 1 if factory is vits.tiny_vit else 3
    logits, cls_attn = forward_with_attention(model, torch.randn(2, chans, size, size))
    assert logits.shape == (2, 7) and cls_attn.shape == (2, tokens)
    assert token_stride(model) == stride and has_cls_attention(model)
    assert not hasattr(model, "token_stride") and not hasattr(model, "has_cls_attention"), "timm's model, unpatched"


def test_classifiers_are_registered_where_defined():
    """The config names of the classifiers, each registered in MODELS by the module that defines it."""
    registered = {name: fn.__module__.rsplit(".", 1)[-1] for name, fn in MODELS.module_dict.items()
                  if fn.__module__.startswith("classification.models.") and not isinstance(fn, type)}
    vit_names = ["deit_tiny", "deit_small", "deit_base", "deit_tiny_patch14", "deit_small_patch14",
                 "deit_base_patch14", "tiny_vit", "cait_xxs36", "xcit_tiny24", "xcit_small12", "xcit_medium24",
                 "xcit_large24"]
    assert registered == {**dict.fromkeys(vit_names, "vits"), "ca_swin_tiny": "ca_swin", "ca_swin_small": "ca_swin",
                          **dict.fromkeys(["pvt_tiny", "pvt_small", "pvt_medium", "pvt_large"], "pvt"),
                          "cct_7_3x1": "cct", **dict.fromkeys(["ms_mlp_tiny", "ms_mlp_small", "ms_mlp_base"], "msmlp")}
    assert all(MODELS.get(name) is getattr(vits, name) for name in vit_names)


def _tiny_overrides(cfg):
    """Shrink a shipped config's backbone input so one step runs in a second; return (cfg.model, image size)."""
    model = cfg.model
    name = model.backbone.type
    if name == "tiny_vit":
        return model, model.backbone.img_size, 1
    if name.startswith("ms_mlp"):  # fully convolutional (no img_size); token stride 32: 64² input, 32-px cells
        model.mix_defaults = dict(mask_size=32)
        model.backbone.depths = (1, 1, 1, 1)
        return model, 64, 3
    if name.startswith("ca_swin"):  # token stride 32: 64² input (2×2 stage-4 tokens), one Swin block per stage
        model.mix_defaults = dict(mask_size=32)
        model.backbone.update(img_size=64, depths=(1, 1, 1, 2))
        return model, 64, 3
    size = 64 if name.startswith("pvt") else (56 if name.endswith("patch14") else 32)
    model.backbone.img_size = size
    if name.startswith("pvt"):
        model.mix_defaults = dict(mask_size=32)
    elif name.endswith("patch14"):
        model.mix_defaults = dict(mask_size=28)
    else:
        model.mix_defaults = dict(mask_size=16)
    if name.startswith(("deit_base", "cait", "xcit")):  # the full depth is built by test_table1.py
        model.backbone.depth = 2
    return model, size, 3


@pytest.mark.parametrize("path", CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_every_config_trains_one_step(path):
    cfg = Config.fromfile(path)
    model_cfg, size, chans = _tiny_overrides(cfg)
    model_cfg.num_classes = 10
    model = MODELS.build(model_cfg)
    method = osp.basename(path).split("_")[1]
    if model_cfg.get("method") is not None:  # a method of its own (TL-Align, SMMix, ...): the one it names
        assert type(model.method) is METHODS.get(model_cfg.method["type"])
    else:
        expected = {"none": "AreaLabels", "baseline": "AreaLabels", "maskmix": "AreaLabels",
                    "transmix": "TransMixLabels", "mixpro": "PALLabels", "mixpro-smooth": "PALLabels",
                    "mixpro-arealam": "PALLabels", "mixpro-detach": "PALLabels",
                    "rmix": "AreaLabels", "rlmix": "AreaLabels", "htm": "AreaLabels", "vtm": "AreaLabels",
                    "resizemix": "AreaLabels"}[method]
        assert type(model.method.policy).__name__ == expected
        assert (model.method.mixer.find("maskmix") is not None) == (method.split("-")[0] in ("mixpro", "maskmix"))
    torch.manual_seed(0)
    x, y = torch.randn(4, chans, size, size), torch.randint(0, 10, (4,))
    maps = dict(label_scores=torch.rand(4, 5, 8, 8), label_indices=torch.randint(0, 10, (4, 5, 8, 8)),
                crop_box=torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 4))  # TokenMix's teacher maps (method.EXTRAS)
    loss = model(x, dict(labels=y, **maps) if model.method.EXTRAS else y, mode="loss")["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    out = model(x, y, mode="predict")
    assert out[0]["logits"].shape == (4, 10)


def method_base(path):
    """The method base a leaf config lists in its _base_ (configs/classification/_base_/methods/<name>.py), or that
    the leaf it inherits lists (``_base_ = ["./<leaf>.py"]``)."""
    with open(path) as f:
        text = f.read()
    names = re.findall(r"_base_/methods/([\w-]+)\.py", text)
    if not names:
        (leaf,) = re.findall(r"\"\./([\w.-]+\.py)\"", text)
        return method_base(osp.join(osp.dirname(path), leaf))
    (name,) = names
    return osp.join(ROOT, "configs/classification/_base_/methods", f"{name}.py")


# keys a leaf deliberately sets differently from its method base (the tiny ViT's scaled TokenMixup settings, TokenMix's
# mask size on 16 tokens)
LEAF_OVERRIDES = {"tiny-vit_htm_1xb128-20e_fmnist.py": {"token_mixup"},
                  "tiny-vit_vtm_1xb128-20e_fmnist.py": {"token_mixup"},
                  "tiny-vit_tokenmix-area_1xb128-20e_fmnist.py": {"method"}}


@pytest.mark.parametrize("path", CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_every_leaf_carries_its_whole_method(path):
    """No leaf drops a key of its method (the old `{{_base_.method.*}}` lines could): the model dict holds every key
    of the method base, equal to it except the leaf's documented overrides."""
    method = Config.fromfile(method_base(path)).method.to_dict()
    model = Config.fromfile(path).model.to_dict()
    overrides = LEAF_OVERRIDES.get(osp.basename(path), set())
    assert set(method) >= ({"method", "smoothing"} if "method" in method else {"mix", "label_policy", "smoothing"})
    for key, value in method.items():
        assert key in model, key
        if key not in overrides:
            assert model[key] == value, key
    assert all(isinstance(entry, dict) and "prob" in entry for entry in model.get("mix") or [])


def test_wrapper_rejects_bad_method_config_and_falls_back_without_cls():
    base = dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit"), mix_defaults=dict(mask_size=8),
                mix=[dict(type="maskmix", prob=1.0)])
    with pytest.raises(ValueError, match=r"mixer \(maskmix\): unknown key\(s\) \['mask_sise'\]"):
        MODELS.build({**base, "mix": [dict(type="maskmix", prob=1.0, mask_sise=8)]})
    with pytest.raises(ValueError, match="label_policy type must be one of"):
        MODELS.build({**base, "label_policy": dict(type="Nope")})
    with pytest.raises(ValueError, match="no registered mixer takes 'mask_sise'"):
        MODELS.build({**base, "mix_defaults": dict(mask_sise=8)})
    with pytest.raises(ValueError, match=r"model.backbone \(tiny_vit\): unknown key\(s\) \['patch_sise'\]"):
        MODELS.build({**base, "backbone": dict(type="tiny_vit", patch_sise=7)})
    bad_cells = MODELS.build({**base, "mix_defaults": dict(mask_size=6)})
    with pytest.raises(ValueError, match="mask_size=6 is not a multiple of patch_size=4"):
        bad_cells(torch.randn(2, 1, 28, 28), torch.tensor([0, 1]), mode="loss")
    assert MODELS.build({**base, "label_policy": dict(type="PALLabels")}).method.use_attention
    no_cls = MODELS.build(dict(type="MixClassifier", num_classes=10, mix_defaults=dict(mask_size=16),
                               backbone=dict(type="deit_tiny", img_size=32, class_token=False, global_pool="avg"),
                               mix=None, label_policy=dict(type="PALLabels")))
    assert not no_cls.method.use_attention  # area labels only, said once in the log
    assert torch.isfinite(no_cls(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), mode="loss")["loss"])


def test_pal_step_uses_attention_of_the_mixed_batch():
    """The wrapper's loss equals PAL on the same MaskMix batch with the attention of that batch (the peaked-attention
    version, where clean and mixed attention differ by far more, is in test_mix_classifier_step.py)."""
    torch.manual_seed(0)  # the same weights and images in any test order
    model = MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit"),
                              mix_defaults=dict(mask_size=8), mix=[dict(type="maskmix", prob=1.0)],
                              label_policy=dict(type="PALLabels")))
    model.eval()  # no drop path, so two forwards agree
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    generator = model._mix_generator()
    loss = model(x, y, mode="loss")["loss"]
    batch = model.method.mixer(x, y, model.backbone, generator)
    logits, attn = forward_with_attention(model.backbone, batch.images)
    torch.testing.assert_close(loss, model.method.policy(batch, logits, attn, y).loss)
    assert batch.kind == "maskmix" and attn.shape == (6, 49)


def test_topk_metric():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 1])
    assert topk_correct(logits, labels, (1, 2)).tolist() == [[True, True], [False, False], [False, True]]
    metric = TopKAccuracy(topk=(1, 2))
    metric.process(None, [dict(logits=logits, labels=labels)])
    assert metric.compute_metrics(metric.results) == pytest.approx({"top1": 100 / 3, "top2": 200 / 3})


def test_load_pretrained_is_strict_with_an_explicit_partial_opt_in(tmp_path):
    src = vits.tiny_vit(num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.state_dict().items()}}, path)
    dst = vits.tiny_vit(num_classes=3)  # a head for other classes: refused unless named
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight \(checkpoint \(10, 96\), model \(3, 96\)\)"):
        load_pretrained(dst, str(path))
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items()), "a refused load changed weights"
    report = load_pretrained(dst, dict(checkpoint=str(path), partial=["head"]))
    assert report.kept_initial == ["head.bias", "head.weight"] and report.loaded == len(before) - 2
    torch.testing.assert_close(dst.patch_embed.proj.weight, src.patch_embed.proj.weight)
    torch.testing.assert_close(dst.head.weight, before["head.weight"])
    with pytest.raises(ValueError, match="expected a path or dict"):
        load_pretrained(dst, dict(checkpoint=str(path), parital=["head"]))
    torch.save({"state_dict": {"foo": torch.zeros(3)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointMismatchError, match="1 not in the model: foo"):
        load_pretrained(dst, str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth is not a readable torch checkpoint"):
        load_pretrained(dst, str(tmp_path / "junk.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pretrained(dst, str(tmp_path / "missing.pth"))


class _Evil:
    def __reduce__(self):
        return getattr, (int, "__subclasses__")


def test_checkpoint_loading_is_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"meta": _Evil()}, path)
    with pytest.raises(UserError, match="evil.pth is not a readable torch checkpoint .*weights-only loading") as info:
        load_checkpoint_file(str(path))
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_atomic_backend_replaces_whole_files(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / "sub" / "last_checkpoint"
    backend.put_text("epoch_1.pth", target)
    backend.put(b"epoch_2.pth", target)
    assert target.read_text() == "epoch_2.pth"
    assert os.listdir(target.parent) == ["last_checkpoint"], "no temporary files left behind"


def test_maskmix_on_tiny_vit_grid_is_cropped():
    """28-px images, 8-px cells, 4-px tokens: a 4×4 grid whose last row and column are 4 px wide. λ is the exact
    own-pixel fraction (not k/G), equal to the token-mask mean; the k own cells are the Beta draw's."""
    from mixpro_core import random_partner, sample_beta
    weight = torch.tensor([8., 8., 8., 4.])  # pixel extent of each cell row / column
    seen = set()
    for seed in range(8):
        batch = maskmix(torch.randn(4, 1, 28, 28), mask_size=8, patch_size=4,
                        generator=torch.Generator().manual_seed(seed))
        assert batch.token_mask.shape == (4, 49)
        cells = batch.pixel_mask[:, 0, ::8, ::8]  # (B,4,4), one value per cell
        g = torch.Generator().manual_seed(seed)
        random_partner(4, g)
        k = max(1, math.ceil(16 * sample_beta(1.0, g)))
        assert cells.flatten(1).sum(1).tolist() == [k] * 4
        own = (cells * weight.view(1, 4, 1) * weight.view(1, 1, 4)).sum((1, 2)) / 784
        torch.testing.assert_close(batch.lam_area, own)
        torch.testing.assert_close(batch.lam_area, batch.token_mask.mean(1))
        torch.testing.assert_close(batch.lam_area, batch.pixel_mask.mean((1, 2, 3)))
        seen.update(round(float(v), 6) for v in own if abs(float(v) - k / 16) > 1e-3)
    assert seen, "no draw put a cropped cell on the own side: the exact λ was never told apart from k/G"


def test_grad_checkpointing_gives_the_same_gradients():
    cfg = dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_size=7),
               mix=[])
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    ckpt = MODELS.build({**cfg, "grad_checkpointing": True})
    ckpt.load_state_dict(plain.state_dict())
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    for model in (plain, ckpt):
        model.eval()  # no drop path: both runs see the same function
        model(x, y, mode="loss")["loss"].backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_load_pretrained_reads_a_runner_checkpoint(tmp_path):
    """A Runner checkpoint holds the message hub (HistoryBuffer, numpy) and DDP-style prefixes: weights-only
    reading must still work, and keys outside ``backbone.`` are left out."""
    from mmengine.logging import HistoryBuffer
    from classification.models.pretrained import read_backbone_state
    src = vits.tiny_vit(num_classes=10)
    buffer = HistoryBuffer()
    buffer.update(1.5)
    hub = {"log_scalars": {"train/loss": buffer}}
    state = {f"module.backbone.{k}": v for k, v in src.state_dict().items()}
    state["module.extra.weight"] = torch.zeros(2)
    path = tmp_path / "epoch_1.pth"
    torch.save({"state_dict": state, "message_hub": hub, "meta": {"iter": 3}}, path)
    backbone, dropped = read_backbone_state(str(path))
    assert dropped == ["extra.weight"] and set(backbone) == set(src.state_dict())
    dst = vits.tiny_vit(num_classes=10)
    load_pretrained(dst, str(path))
    torch.testing.assert_close(dst.head.weight, src.head.weight)


# ------------------------------------------------------------------------------------------------ mixing state
def mixpro_tiny(**kw):
    return MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_size=7),
                             mix_defaults=dict(mask_size=7), label_policy=dict(type="PALLabels"),
                             mix=[dict(type="maskmix", prob=0.5), dict(type="cutmix", prob=0.25),
                                  dict(type="mixup", prob=0.25)], **kw))


def test_mix_step_counts_loss_calls_and_seeds_the_mixing():
    model = mixpro_tiny()
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    assert model.mix_step.dtype == torch.int64 and int(model.mix_step) == 0 and "mix_step" in model.state_dict()
    seeds = []
    for step in range(3):
        seeds.append(model._mix_generator().initial_seed())
        model(x, y, mode="loss")
        assert int(model.mix_step) == step + 1
    assert len(set(seeds)) == 3, "every step mixes with its own generator"
    assert seeds[0] == mixpro_tiny()._mix_generator().initial_seed(), "a function of (mix_seed, step, rank) only"
    assert seeds[0] != mixpro_tiny(mix_seed=1)._mix_generator().initial_seed()
    model(x, y, mode="predict")
    model(x, y, mode="tensor")
    assert int(model.mix_step) == 3, "only training steps count"


def test_resumed_model_mixes_as_the_uninterrupted_one():
    """Outside any Runner: a model restored from a state dict after k steps mixes step k+1 exactly as the model that
    never stopped (the kill -9 resume test checks the same end to end through tools/train.py)."""
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    torch.manual_seed(0)
    straight = mixpro_tiny().eval()
    for _ in range(2):
        straight(x, y, mode="loss")
    resumed = mixpro_tiny().eval()
    resumed.load_state_dict(straight.state_dict())
    assert resumed._mix_generator().initial_seed() == straight._mix_generator().initial_seed()
    torch.testing.assert_close(resumed(x, y, mode="loss")["loss"], straight(x, y, mode="loss")["loss"], rtol=0, atol=0)
    fresh = mixpro_tiny().eval()
    fresh.load_state_dict(straight.state_dict())
    assert int(fresh.mix_step) == 3


def test_a_state_dict_without_mix_step_warns_or_fails_when_strict():
    old = mixpro_tiny()
    state = {k: v for k, v in old.state_dict().items() if k != "mix_step"}
    model = mixpro_tiny()
    with pytest.warns(UserWarning, match="no mix_step"):
        missing, _ = model.load_state_dict(state, strict=False)
    assert missing == ["mix_step"] and int(model.mix_step) == 0 and model._step == 0
    with pytest.raises(RuntimeError, match="mix_step"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_state_dict(state)

"""Classifier contract, the mmengine model wrapper, every shipped config's training step, metric, weights, engine."""
import glob
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import classification  # noqa: F401  (registration)
from classification.engine import AtomicLocalBackend, load_checkpoint_file
from classification.metrics import TopKAccuracy, topk_correct
from classification.models import vits
from classification.models.weights import load_pretrained
from mixpro_core import forward_with_attention, maskmix

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


@pytest.mark.parametrize("factory,blocks", [(vits.cait_xxs24, "blocks_token_only"),
                                            (vits.xcit_tiny12, "cls_attn_blocks")])
def test_class_attention_families_match_slow_path(factory, blocks):
    torch.manual_seed(0)
    model = factory(img_size=32, num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    logits, cls_attn = forward_with_attention(model, x)
    assert logits.shape == (2, 5) and cls_attn.shape == (2, 4) and model.token_stride == 16
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
    assert model.token_stride == stride and model.has_cls_attention


def _tiny_overrides(cfg):
    """Shrink a shipped config's backbone input so one step runs in a second; return (cfg.model, image size)."""
    model = cfg.model
    name = model.backbone.type
    if name == "tiny_vit":
        return model, model.backbone.img_size, 1
    if name.startswith("ms_mlp"):  # fully convolutional (no img_size); token stride 32: 64² input, 32-px cells
        model.mix.mask_size = 32
        model.backbone.depths = (1, 1, 1, 1)
        return model, 64, 3
    size = 64 if name.startswith("pvt") else (56 if name.endswith("patch14") else 32)
    model.backbone.img_size = size
    if name.startswith("pvt"):
        model.mix.mask_size = 32
    elif name.endswith("patch14"):
        model.mix.mask_size = 28
    else:
        model.mix.mask_size = 16
    if name.startswith("deit_base"):
        model.backbone.depth = 2
    return model, size, 3


@pytest.mark.parametrize("path", CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_every_config_trains_one_step(path):
    cfg = Config.fromfile(path)
    model_cfg, size, chans = _tiny_overrides(cfg)
    model_cfg.num_classes = 10
    model = MODELS.build(model_cfg)
    policy = type(model.policy).__name__
    method = osp.basename(path).split("_")[1]
    expected = {"none": "AreaLabels", "baseline": "AreaLabels", "maskmix": "AreaLabels",
                "transmix": "TransMixLabels", "mixpro": "PALLabels",
                "rmix": "AreaLabels", "rlmix": "AreaLabels", "htm": "AreaLabels", "vtm": "AreaLabels"}[method]
    assert policy == expected
    assert (model.schedule.maskmix_prob > 0) == (method in ("mixpro", "maskmix"))
    torch.manual_seed(0)
    x, y = torch.randn(4, chans, size, size), torch.randint(0, 10, (4,))
    loss = model(x, y, mode="loss")["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    out = model(x, y, mode="predict")
    assert out[0]["logits"].shape == (4, 10)


def test_wrapper_rejects_bad_method_config_and_falls_back_without_cls():
    base = dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit"), mix=dict(mask_size=8))
    with pytest.raises(ValueError, match="mix: unknown key"):
        MODELS.build({**base, "mix": dict(mask_size=8, mask_sise=8)})
    with pytest.raises(ValueError, match="label_policy.type"):
        MODELS.build({**base, "label_policy": dict(type="Nope")})
    with pytest.raises(ValueError, match="mask_size=6 is not a multiple of patch_size=4"):
        MODELS.build({**base, "mix": dict(mask_size=6)})
    assert MODELS.build({**base, "label_policy": dict(type="PALLabels")}).use_attention
    no_cls = MODELS.build(dict(type="MixClassifier", num_classes=10, mix=dict(mask_size=16),
                               backbone=dict(type="deit_tiny", img_size=32, class_token=False, global_pool="avg"),
                               label_policy=dict(type="PALLabels")))
    assert not no_cls.use_attention  # area labels only, said once in the log
    assert torch.isfinite(no_cls(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), mode="loss")["loss"])


def test_pal_step_uses_attention_of_the_mixed_batch():
    """The wrapper's loss equals PAL on the same MaskMix batch with the attention of that batch."""
    model = MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit"),
                              mix=dict(mask_size=8, maskmix_prob=1.0), label_policy=dict(type="PALLabels")))
    model.eval()  # no drop path, so two forwards agree
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    loss = model(x, y, mode="loss")["loss"]
    batch = model.schedule(x, model._mix_generator())
    logits, attn = forward_with_attention(model.backbone, batch.images)
    torch.testing.assert_close(loss, model.policy.loss(batch, logits, attn, y))
    assert batch.kind == "maskmix" and attn.shape == (6, 49)


def test_topk_metric():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 1])
    assert topk_correct(logits, labels, (1, 2)).tolist() == [[True, True], [False, False], [False, True]]
    metric = TopKAccuracy(topk=(1, 2))
    metric.process(None, [dict(logits=logits, labels=labels)])
    assert metric.compute_metrics(metric.results) == pytest.approx({"top1": 100 / 3, "top2": 200 / 3})


def test_load_pretrained_strips_prefixes_and_refuses_wrong_files(tmp_path):
    src = vits.tiny_vit(num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.state_dict().items()}}, path)
    dst = vits.tiny_vit(num_classes=3)  # different head: skipped, the rest loads
    load_pretrained(dst, str(path))
    torch.testing.assert_close(dst.patch_embed.proj.weight, src.patch_embed.proj.weight)
    torch.save({"state_dict": {"foo": torch.zeros(3)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no parameter matches"):
        load_pretrained(dst, str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_pretrained(dst, str(tmp_path / "junk.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pretrained(dst, str(tmp_path / "missing.pth"))


class _Evil:
    def __reduce__(self):
        return getattr, (int, "__subclasses__")


def test_checkpoint_loading_is_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"meta": _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(str(path))


def test_atomic_backend_replaces_whole_files(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / "sub" / "last_checkpoint"
    backend.put_text("epoch_1.pth", target)
    backend.put(b"epoch_2.pth", target)
    assert target.read_text() == "epoch_2.pth"
    assert os.listdir(target.parent) == ["last_checkpoint"], "no temporary files left behind"


def test_maskmix_on_tiny_vit_grid_is_cropped():
    batch = maskmix(torch.randn(4, 1, 28, 28), mask_size=8, patch_size=4, generator=torch.Generator().manual_seed(0))
    assert batch.token_mask.shape == (4, 49)
    torch.testing.assert_close(batch.lam_area, batch.pixel_mask.mean((1, 2, 3)))


def test_grad_checkpointing_gives_the_same_gradients():
    cfg = dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_size=7),
               mix=dict(maskmix_prob=0.0, mixup_alpha=0.0, cutmix_alpha=0.0))
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
    from classification.models.weights import read_backbone_state
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

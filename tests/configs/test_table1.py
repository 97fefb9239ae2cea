"""The MixPro paper's Table 1, pinned (docs/methods.md, "Paper tables" and "Recipes").

Every row has a baseline, a TransMix and a MixPro config that differ only in their method base (the DeiT rows' TransMix
configs also in TransMix's published DeiT recipe: test_transmix_recipe.py); each builds (the backbone on the meta
device, so the 189M-parameter XCiT-L costs no memory) with the row's parameters within 1% and its MACs at 224²
(torch's FlopCounterMode FLOPs / 2, one image) within 5% of the paper, and follows its family's recipe. Then one
MixPro step of CA-Swin-T with PAL on the CPU at 64² (2×2 stage-4 tokens).
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from torch.utils.flop_counter import FlopCounterMode

import classification.register_all  # noqa: F401  (registration)
from classification.models import mix_classifier
from mixpro_core import forward_with_attention, has_cls_attention

from classification.foundation.host import ROOT
CONFIGS = osp.join(ROOT, "configs/classification")
METHODS = ("baseline", "transmix", "mixpro")

# row: (config stem, recipe, drop path, parameters M, GFLOPs as the paper counts them = our GMACs)
ROWS = {
    "DeiT-T": ("deit-t", "deit", 0.1, 5.7, 1.6), "DeiT-S": ("deit-s", "deit", 0.1, 22.1, 4.7),
    "DeiT-B": ("deit-b", "deit", 0.1, 86.6, 17.6),
    "PVT-T": ("pvt-t", "pvt", 0.1, 13.2, 1.9), "PVT-S": ("pvt-s", "pvt", 0.1, 24.5, 3.8),
    "PVT-M": ("pvt-m", "pvt-ml", 0.3, 44.2, 6.7), "PVT-L": ("pvt-l", "pvt-ml", 0.3, 61.4, 9.8),
    "CaiT-XXS": ("cait-xxs36", "cait-xcit", 0.1, 17.3, 3.8),
    "XCiT-T": ("xcit-t24", "cait-xcit", 0.05, 12, 2.3), "XCiT-S": ("xcit-s12", "cait-xcit", 0.05, 26, 4.8),
    "XCiT-M": ("xcit-m24", "cait-xcit", 0.15, 84, 16.2), "XCiT-L": ("xcit-l24", "cait-xcit", 0.25, 189, 36.1),
    "CA-Swin-T": ("ca-swin-t", "swin", 0.2, 28.3, 4.2), "CA-Swin-S": ("ca-swin-s", "swin", 0.3, 49.6, 8.5),
}
# the paper's DeiT-T FLOPs (1.6G) are not DeiT-Ti's: the DeiT paper gives 1.3G for the same model (5.7M parameters)
MACS_EXCEPTIONS = {"DeiT-T": 1.3}
# recipe: (epochs, warm-up epochs, gradient clipping max_norm or None, eval crop ratio, repeated augmentation)
RECIPES = {
    "deit": (300, 20, 5.0, 224 / 256, False), "swin": (300, 20, 5.0, 224 / 256, False),
    "pvt": (300, 5, None, 224 / 256, True), "pvt-ml": (300, 5, 1.0, 224 / 256, True),
    "cait-xcit": (400, 5, None, 1.0, True),
}


def row_configs(stem):
    """The row's {method: path}; exactly one config per method."""
    found = {m: sorted(glob.glob(osp.join(CONFIGS, f"{stem}_{m}_8xb128-*e_in1k.py"))) for m in METHODS}
    assert all(len(paths) == 1 for paths in found.values()), found
    return {m: paths[0] for m, paths in found.items()}


def without_method(cfg):
    """The config as a dict without what the method base sets (``method`` and its keys under ``model``)."""
    cfg = cfg.to_dict()
    method = cfg.pop("method")
    return dict(cfg, model={k: v for k, v in cfg["model"].items() if k not in method})


@pytest.fixture
def meta_backbones(monkeypatch):
    """MixClassifier builds its backbone on the meta device (shapes only: no memory, no initialisation time)."""
    build = mix_classifier._build_backbone

    def on_meta(cfg, num_classes):
        with torch.device("meta"):
            return build(cfg, num_classes)
    monkeypatch.setattr(mix_classifier, "_build_backbone", on_meta)


def gmacs(model, size=224):
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() / 2e9


@pytest.mark.parametrize("row", list(ROWS))
def test_row_configs_build_the_paper_model_and_differ_only_in_method(row, meta_backbones):
    stem, recipe, drop_path, params, flops = ROWS[row]
    paths = row_configs(stem)
    cfgs = {m: Config.fromfile(p) for m, p in paths.items()}
    if recipe != "deit":  # the DeiT rows' TransMix configs run TransMix's own DeiT recipe (test_transmix_recipe.py)
        assert without_method(cfgs["transmix"]) == without_method(cfgs["baseline"])
    assert without_method(cfgs["mixpro"]) == without_method(cfgs["baseline"])
    policies = {}
    for method, cfg in cfgs.items():
        model = MODELS.build(cfg.model)
        policies[method] = type(model.method.policy).__name__
        assert has_cls_attention(model.backbone), f"{row}: PAL / TransMix need the CLS attention"
        assert model.method.use_attention == (method != "baseline")
        assert model.method.mix_defaults["mask_size"] == 32 and 32 % model.token_stride == 0
    assert policies == dict(baseline="AreaLabels", transmix="TransMixLabels", mixpro="PALLabels")
    backbone = model.backbone
    ours = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert ours == pytest.approx(params, rel=0.01), f"{row}: {ours:.2f}M parameters, the paper {params}M"
    ours = gmacs(backbone)
    expected = MACS_EXCEPTIONS.get(row, flops)
    assert ours == pytest.approx(expected, rel=0.05), f"{row}: {ours:.2f} GMACs, expected {expected}G"

    cfg = cfgs["baseline"]
    epochs, warmup, clip, crop, repeated = RECIPES[recipe]
    assert f"_8xb128-{epochs}e_" in paths["baseline"] and cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[0].end == warmup and cfg.param_scheduler[-1].end == epochs
    assert cfg.optim_wrapper.optimizer.lr * 1024 / cfg.auto_scale_lr.base_batch_size == pytest.approx(1e-3)
    assert (cfg.optim_wrapper.get("clip_grad") or {}).get("max_norm") == clip
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.val_dataloader.dataset.transform.get("crop_pct", 224 / 256) == crop
    assert (cfg.train_dataloader.sampler.type == "RepeatAugSampler") == repeated


def test_every_imagenet_config_of_a_table_family_is_a_table_row():
    """No config claims a family of the table with another model (as the XCiT-T12 / CaiT-XXS24 ones did)."""
    stems = {s for s, *_ in ROWS.values()}
    families = ("deit-", "pvt-", "cait-", "xcit-", "ca-swin-")
    leaves = [osp.basename(p) for p in glob.glob(osp.join(CONFIGS, "*_in1k*.py"))]
    claims = {name.split("_")[0] for name in leaves if name.startswith(families)}
    assert claims - stems <= {"deit-t-p14", "deit-s-p14", "deit-b-p14"}  # the official patch-14 MixPro variants
    assert stems <= claims


def test_ca_swin_t_mixpro_step_with_pal_on_the_cpu():
    """CA-Swin-T's MixPro config at 64² (stage 4: 2×2 tokens of 32 px = the MaskMix cells): on a MaskMix step the
    loss is PAL's with the class-attention map of that batch, finite, and its gradients reach the class attention."""
    cfg = Config.fromfile(row_configs("ca-swin-t")["mixpro"])
    cfg.model.backbone.img_size = 64
    cfg.model.num_classes = 10
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    for seed in range(64):  # a mixing seed whose first step draws MaskMix (PAL's batches; 50% of the steps)
        model.mix_seed = seed
        batch = model.method.mixer(x, y, model.backbone, model._mix_generator())
        if batch.kind == "maskmix":
            break
    assert batch.kind == "maskmix" and batch.token_mask.shape == (4, 4)
    torch.manual_seed(1)  # the same drop-path draws in both forwards
    losses = model(x, y, mode="loss")
    torch.manual_seed(1)
    logits, attn = forward_with_attention(model.backbone, batch.images)
    assert attn.shape == (4, 4) and not attn.requires_grad
    assert bool(((attn > 0) & (attn.sum(-1, keepdim=True) <= 1 + 1e-6)).all())
    assert "pal_alpha" in losses and torch.isfinite(losses["loss"])
    torch.testing.assert_close(losses["loss"], model.method.policy(batch, logits, attn, y).loss)

    losses["loss"].backward()
    class_attn = model.backbone.blocks_token_only[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in class_attn.parameters())
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    before = class_attn.attn.q.weight.detach().clone()
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    assert not torch.equal(before, class_attn.attn.q.weight)

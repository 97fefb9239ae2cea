"""Every method base and every model base's MaskMix cell size, pinned to the values documented in docs/methods.md
("Method schedule", "Recipes", "MaskMix", "PAL", "TransMix", "ResizeMix", "TokenMixup", "R-Mix and RL-Mix").

The expected dicts are written out in full: a base that loses a mixer (TransMix without CutMix is plain Mixup with
a useless attention pass), changes a probability, an α, the label policy or one of its options fails here, as does
a new method base without a pin."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from classification.foundation.host import ROOT
METHODS = osp.join(ROOT, "configs/classification/_base_/methods")
MODELS = osp.join(ROOT, "configs/classification/_base_/models")

# docs/methods.md, "Recipes": Mixup α 0.8, CutMix α 1.0, switch 0.5; MaskMix probability 0.5, α 1; smoothing 0.1
CUTMIX = dict(type="cutmix", prob=0.5, alpha=1.0)
MIXUP = dict(type="mixup", prob=0.5, alpha=0.8)
AREA = dict(type="AreaLabels")
# "Method schedule": MixPro is MaskMix 0.5, CutMix 0.25, Mixup 0.25
MIXPRO_SCHEDULE = [dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
                   dict(type="mixup", prob=0.25, alpha=0.8)]

EXPECTED = {
    "none": dict(mix=None, label_policy=AREA, smoothing=0.1),  # no mixing, said explicitly
    "baseline": dict(mix=[CUTMIX, MIXUP], label_policy=AREA, smoothing=0.1),
    # "TransMix": the baseline's schedule; (λ_area + λ_attn)/2 on batches with a token mask
    "transmix": dict(mix=[CUTMIX, MIXUP], label_policy=dict(type="TransMixLabels"), smoothing=0.1),
    # "TransMix column recipe": TransMix's DeiT files (Beckschen/TransMix configs/deit_{s,b}_transmix.yaml) switch to
    # CutMix with probability 0.8, Mixup 0.2
    "transmix-deit": dict(mix=[dict(type="cutmix", prob=0.8, alpha=1.0), dict(type="mixup", prob=0.2, alpha=0.8)],
                          label_policy=dict(type="TransMixLabels"), smoothing=0.1),
    # "PAL": detach_factor=False, keep_smoothing=False reproduce the authors' code; PAL switched on
    "mixpro": dict(mix=MIXPRO_SCHEDULE, label_policy=dict(type="PALLabels", detach_factor=False,
                                                          keep_smoothing=False), smoothing=0.1),
    # "PAL": the ablation switches, each alone (smoothed CE / area λ with hard CE / α detached)
    "mixpro-smooth": dict(mix=MIXPRO_SCHEDULE, label_policy=dict(type="PALLabels", detach_factor=False,
                                                                 keep_smoothing=True), smoothing=0.1),
    "mixpro-arealam": dict(mix=MIXPRO_SCHEDULE, label_policy=dict(type="PALLabels", detach_factor=False,
                                                                  keep_smoothing=False, lam_source="area"),
                           smoothing=0.1),
    "mixpro-detach": dict(mix=MIXPRO_SCHEDULE, label_policy=dict(type="PALLabels", detach_factor=True,
                                                                 keep_smoothing=False), smoothing=0.1),
    # "PAL": the maskmix configs give MaskMix without PAL
    "maskmix": dict(mix=MIXPRO_SCHEDULE, label_policy=AREA, smoothing=0.1),
    # "Method schedule" / "ResizeMix": ResizeMix 0.5 (τ ~ U[0.1, 0.8], bilinear), Mixup 0.5
    "resizemix": dict(mix=[dict(type="resizemix", prob=0.5, scale=(0.1, 0.8), interpolation="bilinear"), MIXUP],
                      label_policy=AREA, smoothing=0.1),
    # "TokenMixup": paper settings HTM at block 2, τ 0.2, ρ 0.005, λ_sn 0.001; VTM at block 2, κ 80; on the baseline
    "htm": dict(mix=[CUTMIX, MIXUP], token_mixup=dict(type="htm", layer=2, tau=0.2, rho=0.005, lambda_sn=0.001,
                                                      pool=None),
                label_policy=AREA, smoothing=0.1),
    "vtm": dict(mix=[CUTMIX, MIXUP], token_mixup=dict(type="vtm", layer=2, kappa=80), label_policy=AREA,
                smoothing=0.1),
    # "R-Mix and RL-Mix": λ ~ Beta(1, 1), g from {2, 4} per batch (grid=None), every batch; an area label
    "rmix": dict(mix=[dict(type="rmix", prob=1.0, alpha=1.0, grid=None)], label_policy=AREA, smoothing=0.1),
    # RL-Mix: as R-Mix, q chosen by PPO on a 4×4 saliency observation (update every 1024 images, 4 epochs of
    # minibatches of 256, lr 3e-4, entropy bonus 0.01, as the method base's comment documents)
    "rlmix": dict(mix=[dict(type="rlmix", prob=1.0, alpha=1.0, grid=None, obs_grid=4, learn=True, n_steps=1024,
                            batch_size=256, n_epochs=4, learning_rate=3e-4, ent_coef=0.01)],
                  label_policy=AREA, smoothing=0.1),
    # "TL-Align": token-grid CutMix on every batch, λ ~ Beta(1, 1); "SMMix": SMMix / Mixup 0.8 switch 0.5, window
    # sides int(0.25·side) … int(0.75·side)
    "tlalign": dict(method=dict(type="tlalign", alpha=1.0), smoothing=0.1),
    "smmix": dict(method=dict(type="smmix", switch_prob=0.5, mixup_alpha=0.8, min_side_ratio=0.25,
                              max_side_ratio=0.75), smoothing=0.1),
    # "TokenMix": block masks with λ0 = 0.5 / Mixup 0.8, switch 0.5, BCE; no teacher (area weights); "MergeMix":
    # λ ~ Beta(1, 1), the extra Mixup 0.8 CE, the last block's attention read through its own patch map
    "tokenmix-area": dict(method=dict(type="tokenmix-area", switch_prob=0.5, mixup_alpha=0.8, lam=0.5), smoothing=0.1),
    # TokenMix with the teacher's maps: tokenmix-area's step, the crop box read as (x0, y0, x1, y1)
    "tokenmix": dict(method=dict(type="tokenmix", switch_prob=0.5, mixup_alpha=0.8, lam=0.5, official_box_order=False),
                     smoothing=0.1),
    "mergemix": dict(method=dict(type="mergemix", alpha=1.0, mixup_alpha=0.8, official_last_merge=False),
                     smoothing=0.1),
}

# "MaskMix": 32-px cells for patch-16 models at 224 px (DeiT, PVT, CaiT, XCiT; the token stride of MS-MLP and of
# CA-Swin's stage 4 is 32), the authors' 56-px cells with patch 14, 8-px cells for the 32-px tiny ViT of the
# Fashion-MNIST configs
EXPECTED_MASK_SIZE = {
    "deit-t": 32, "deit-s": 32, "deit-b": 32, "cait-xxs36": 32,
    "xcit-t24": 32, "xcit-s12": 32, "xcit-m24": 32, "xcit-l24": 32, "ca-swin-t": 32, "ca-swin-s": 32,
    "pvt-t": 32, "pvt-s": 32, "pvt-m": 32, "pvt-l": 32, "ms-mlp-t": 32, "ms-mlp-s": 32, "ms-mlp-b": 32,
    "deit-t-p14": 56, "deit-s-p14": 56, "deit-b-p14": 56, "tiny-vit-fmnist": 8,
    # the 64-token tiny ViT (patch 4): 8-px cells = 2×2 tokens, and one token per 4-px cell
    "tiny-vit-p4-fmnist": 8, "tiny-vit-p4c4-fmnist": 4,
}


def names(folder):
    return sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(folder, "*.py")))


def test_every_method_base_is_pinned():
    assert names(METHODS) == sorted(EXPECTED)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_method_base_is_the_documented_method(method):
    actual = Config.fromfile(osp.join(METHODS, f"{method}.py")).method.to_dict()
    assert actual == EXPECTED[method]
    # the order of the schedule is part of it (one uniform picks the entry whose interval holds it)
    assert [e["type"] for e in actual.get("mix") or []] == [e["type"] for e in EXPECTED[method].get("mix") or []]


def test_every_model_base_sets_the_documented_mask_size():
    assert set(names(MODELS)) >= set(EXPECTED_MASK_SIZE)
    for name in names(MODELS):
        model = Config.fromfile(osp.join(MODELS, f"{name}.py")).model
        if name in EXPECTED_MASK_SIZE:
            assert model.mix_defaults.to_dict() == dict(mask_size=EXPECTED_MASK_SIZE[name]), name
        else:
            assert "mix_defaults" not in model or "mask_size" not in model.mix_defaults, \
                f"{name}: a model base with a MaskMix cell size must be pinned here"

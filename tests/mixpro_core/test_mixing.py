"""Pins the image-space semantics of docs/methods.md ("Mixup", "CutMix", "MaskMix", "ResizeMix", "Method schedule"):
the mixers, the registry and schedule, and the Beta sampler."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import torch.nn.functional as F

from mixpro_core import (MIXERS, AreaLabels, Mixer, MixSchedule, PALLabels, TransMixLabels, build_mixer,
                         build_schedule, check_mix_defaults, cutmix, maskmix, mixup, random_partner, resizemix,
                         sample_beta, token_mask_from_pixels)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(b=8, h=224, w=224, seed=0):
    return torch.randn(b, 3, h, w, generator=gen(seed))


def assert_mixed_exactly(batch, x):
    m = batch.pixel_mask
    assert torch.equal(batch.images, x * m + x[batch.partner] * (1 - m))


def assert_permutation_without_fixed_point(partner, b):
    assert partner.dtype == torch.long
    assert sorted(partner.tolist()) == list(range(b))
    assert not (partner == torch.arange(b)).any()


# ------------------------------------------------------------------------------------------------ sampler / partner
@pytest.mark.parametrize("alpha", [0.8, 1.0, 2.0])
def test_sample_beta_follows_beta_distribution(alpha):
    g = gen(1)
    draws = [sample_beta(alpha, g) for _ in range(3000)]
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 0.01
    assert all(0.0 <= d <= 1.0 for d in draws)


def test_sample_beta_is_reproducible_and_rejects_bad_alpha():
    assert sample_beta(1.0, gen(5)) == sample_beta(1.0, gen(5))
    assert sample_beta(1.0, gen(5)) != sample_beta(1.0, gen(6))
    g = gen(7)
    first, second = sample_beta(0.8, g), sample_beta(0.8, g)
    assert first != second, "each call advances the generator"
    with pytest.raises(ValueError, match="alpha"):
        sample_beta(0.0)


@pytest.mark.parametrize("alpha", [0.2, 0.8, 1.0])
def test_sample_beta_mean_and_variance(alpha):
    """Beta(α,α): mean 1/2, variance 1/(4(2α+1)); 20000 draws, tolerances of ~5 standard errors."""
    g = gen(2)
    draws = np.array([sample_beta(alpha, g) for _ in range(20000)])
    var = 1 / (4 * (2 * alpha + 1))
    assert abs(draws.mean() - 0.5) < 5 * math.sqrt(var / len(draws))
    assert draws.var() == pytest.approx(var, rel=0.05)


def test_random_partner_is_derangement_and_needs_two_samples():
    for seed in range(20):
        assert_permutation_without_fixed_point(random_partner(7, gen(seed)), 7)
    assert random_partner(2, gen()).tolist() == [1, 0]
    with pytest.raises(ValueError, match="at least 2"):
        random_partner(1)


# ------------------------------------------------------------------------------------------------ mixup
def test_mixup_blends_whole_images_with_one_lambda():
    x = images(6, 32, 32)
    batch = mixup(x, alpha=0.8, generator=gen(3))
    lam = float(batch.lam_area[0])
    assert batch.kind == "mixup" and batch.pixel_mask is None and batch.token_mask is None
    assert torch.all(batch.lam_area == lam)
    assert_permutation_without_fixed_point(batch.partner, 6)
    torch.testing.assert_close(batch.images, lam * x + (1 - lam) * x[batch.partner])
    # the λ is exactly the Beta draw after the partner draw from the same generator
    g = gen(3)
    random_partner(6, g)
    assert lam == pytest.approx(sample_beta(0.8, g), abs=1e-7)


# ------------------------------------------------------------------------------------------------ cutmix
def test_cutmix_one_box_exact_lambda_and_token_rule():
    x = images(4, 224, 224)
    for seed in range(10):
        batch = cutmix(x, alpha=1.0, patch_size=16, generator=gen(seed))
        m = batch.pixel_mask
        assert batch.kind == "cutmix" and m.shape == (4, 1, 224, 224)
        assert torch.equal(m, m[:1].expand_as(m)), "one box per batch"
        hole = (m[0, 0] == 0).nonzero()
        if len(hole):
            (y0, x0), (y1, x1) = hole.min(0).values.tolist(), hole.max(0).values.tolist()
            assert int((m[0, 0, y0:y1 + 1, x0:x1 + 1] == 0).sum()) == len(hole), "the pasted region is one rectangle"
        torch.testing.assert_close(batch.lam_area, m.mean(dim=(1, 2, 3)))
        assert torch.equal(batch.token_mask, m[:, 0, ::16, ::16].reshape(4, 196))
        assert_mixed_exactly(batch, x)


def test_cutmix_box_size_follows_lambda_before_clipping():
    x = images(2, 100, 100)
    g = gen(11)
    batch = cutmix(x, alpha=1.0, generator=g)
    g = gen(11)
    random_partner(2, g)
    lam = sample_beta(1.0, g)
    centre = torch.rand(2, generator=g)
    cy, cx = int(centre[0] * 100), int(centre[1] * 100)
    cut = int(100 * math.sqrt(1 - lam))
    y0, y1 = max(cy - cut // 2, 0), min(cy + cut // 2, 100)
    x0, x1 = max(cx - cut // 2, 0), min(cx + cut // 2, 100)
    assert float(batch.lam_area[0]) == pytest.approx(1 - (y1 - y0) * (x1 - x0) / 1e4)
    assert batch.token_mask is None


# ------------------------------------------------------------------------------------------------ maskmix
def test_maskmix_official_grid_semantics():
    x = images(16, 224, 224)
    for seed in range(10):
        batch = maskmix(x, mask_size=56, patch_size=14, alpha=1.0, generator=gen(seed))
        m = batch.pixel_mask
        assert batch.kind == "maskmix" and m.shape == (16, 1, 224, 224)
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        cells = m[:, 0, ::56, ::56]  # (B,4,4)
        # each 56-px cell is uniform (token purity at cell level)
        assert torch.equal(m[:, 0], cells.repeat_interleave(56, 1).repeat_interleave(56, 2))
        # k own cells, identical across the batch, k = max(1, ceil(G·r)) with r the batch's Beta draw
        g = gen(seed)
        random_partner(16, g)
        k = max(1, math.ceil(16 * sample_beta(1.0, g)))
        assert cells.flatten(1).sum(1).tolist() == [k] * 16
        torch.testing.assert_close(batch.lam_area, torch.full((16,), k / 16), rtol=0, atol=0)
        torch.testing.assert_close(batch.lam_area, m.mean(dim=(1, 2, 3)))
        torch.testing.assert_close(batch.lam_area, batch.token_mask.mean(1))
        assert_permutation_without_fixed_point(batch.partner, 16)
        assert_mixed_exactly(batch, x)


def test_maskmix_tokens_come_from_one_image():
    x = images(8, 224, 224)
    batch = maskmix(x, mask_size=32, patch_size=16, generator=gen(2))
    m = batch.pixel_mask[:, 0]
    patches = m.unfold(1, 16, 16).unfold(2, 16, 16)  # (B,14,14,16,16)
    assert torch.all(patches.amin((-1, -2)) == patches.amax((-1, -2))), "a token mixes two images"
    assert batch.token_mask.shape == (8, 196)
    assert torch.equal(batch.token_mask, patches[..., 0, 0].flatten(1))
    assert torch.equal(batch.token_mask, token_mask_from_pixels(batch.pixel_mask, 16))


def test_maskmix_cells_chosen_independently_per_sample():
    batch = maskmix(images(32, 64, 64), mask_size=16, patch_size=8, generator=gen(4))
    cells = batch.pixel_mask[:, 0, ::16, ::16].flatten(1)
    assert len({tuple(c.tolist()) for c in cells}) > 1


def test_maskmix_border_cells_are_cropped_and_lambda_exact():
    x = images(6, 40, 40)  # 16-px cells → 3×3 grid, last row/column 8 px wide
    for seed in range(10):
        batch = maskmix(x, mask_size=16, patch_size=8, generator=gen(seed))
        m = batch.pixel_mask
        assert m.shape == (6, 1, 40, 40) and batch.token_mask.shape == (6, 25)
        cells = m[:, 0, ::16, ::16]  # (B,3,3)
        expected = cells.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, :40, :40]
        assert torch.equal(m[:, 0], expected)
        weight = torch.tensor([16., 16., 8.])
        own_pixels = (cells * weight.view(1, 3, 1) * weight.view(1, 1, 3)).sum((1, 2))
        torch.testing.assert_close(batch.lam_area, own_pixels / 1600)
        torch.testing.assert_close(batch.lam_area, m.mean(dim=(1, 2, 3)))
        torch.testing.assert_close(batch.lam_area, batch.token_mask.mean(1))  # 8-px tokens tile the cropped cells
        assert_mixed_exactly(batch, x)


def test_maskmix_keeps_at_least_one_cell_and_is_reproducible():
    x = images(4, 32, 32)
    for seed in range(30):
        assert maskmix(x, 16, 16, alpha=0.05, generator=gen(seed)).pixel_mask.flatten(1).sum(1).min() >= 256
    a, b = maskmix(x, 16, 8, generator=gen(9)), maskmix(x, 16, 8, generator=gen(9))
    assert torch.equal(a.images, b.images) and torch.equal(a.partner, b.partner)


def test_maskmix_rejects_incompatible_sizes_with_clear_errors():
    x = images(2, 224, 224)
    with pytest.raises(ValueError, match=r"mask_size=56 is not a multiple of patch_size=16"):
        maskmix(x, mask_size=56, patch_size=16)
    with pytest.raises(ValueError, match=r"230x230 is not a multiple of patch_size=16"):
        maskmix(images(2, 230, 230), mask_size=32, patch_size=16)
    with pytest.raises(ValueError, match="at least 2"):
        maskmix(x[:1], mask_size=32, patch_size=16)
    with pytest.raises(ValueError, match=r"\(B,C,H,W\)"):
        maskmix(x[0], mask_size=32, patch_size=16)


# ------------------------------------------------------------------------------------------------ resizemix
def resizemix_box(batch):
    """(y0, y1, x0, x1) of the pasted region, from the pixel mask (0 = partner)."""
    hole = (batch.pixel_mask[0, 0] == 0).nonzero()
    (y0, x0), (y1, x1) = hole.min(0).values.tolist(), hole.max(0).values.tolist()
    return y0, y1 + 1, x0, x1 + 1


def test_resizemix_pastes_the_whole_resized_partner_with_the_exact_lambda():
    x = images(6, 64, 48)
    for seed in range(10):
        batch = resizemix(x, generator=gen(seed))
        y0, y1, x0, x1 = resizemix_box(batch)
        m = batch.pixel_mask
        assert batch.kind == "resizemix" and not batch.token_exact and batch.token_mask is None
        assert torch.equal(m, m[:1].expand_as(m)) and int((m[0, 0] == 0).sum()) == (y1 - y0) * (x1 - x0)
        torch.testing.assert_close(batch.lam_area, torch.full((6,), 1 - (y1 - y0) * (x1 - x0) / (64 * 48)))
        resized = F.interpolate(x[batch.partner], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
        assert torch.equal(batch.images[..., y0:y1, x0:x1], resized)
        assert torch.equal(batch.images * m, x * m), "pixels outside the box are the image's own"
        assert_permutation_without_fixed_point(batch.partner, 6)


def test_resizemix_box_follows_the_scale_draw():
    x = images(4, 100, 100)
    for seed in range(20):
        g = gen(seed)
        batch = resizemix(x, scale=(0.1, 0.8), generator=g)
        g = gen(seed)
        random_partner(4, g)
        tau = 0.1 + 0.7 * float(torch.rand((), generator=g))
        y0, y1, x0, x1 = resizemix_box(batch)
        assert (y1 - y0, x1 - x0) == (int(tau * 100), int(tau * 100))
        assert y0 == int(torch.randint(100 - (y1 - y0) + 1, (), generator=g))
        assert x0 == int(torch.randint(100 - (x1 - x0) + 1, (), generator=g))
    for s in range(3):  # a fixed scale fixes the box size
        y0, y1, x0, x1 = resizemix_box(resizemix(x, scale=(0.3, 0.3), generator=gen(s)))
        assert (y1 - y0, x1 - x0) == (30, 30)
    with pytest.raises(ValueError, match="scale"):
        resizemix(x, scale=(0.0, 0.5))
    with pytest.raises(ValueError, match="align=True needs patch_size"):
        resizemix(x, align=True)


def test_resizemix_token_mask_and_aligned_boxes():
    x = images(4, 64, 64)
    for seed in range(10):
        batch = resizemix(x, patch_size=8, generator=gen(seed))
        assert torch.equal(batch.token_mask, token_mask_from_pixels(batch.pixel_mask, 8))
        aligned = resizemix(x, patch_size=8, align=True, generator=gen(seed))
        y0, y1, x0, x1 = resizemix_box(aligned)
        assert aligned.token_exact and all(v % 8 == 0 for v in (y0, y1, x0, x1))
        patches = aligned.pixel_mask[:, 0].unfold(1, 8, 8).unfold(2, 8, 8)
        assert torch.all(patches.amin((-1, -2)) == patches.amax((-1, -2))), "a token mixes two images"
        expected = torch.ones(8, 8)
        expected[y0 // 8:y1 // 8, x0 // 8:x1 // 8] = 0
        assert torch.equal(aligned.token_mask, expected.flatten().expand(4, 64))
        torch.testing.assert_close(aligned.lam_area, aligned.token_mask.mean(1))


def test_resizemix_is_reproducible_and_bicubic_is_an_option():
    x = images(4, 32, 32)
    a, b = resizemix(x, generator=gen(3)), resizemix(x, generator=gen(3))
    assert torch.equal(a.images, b.images) and torch.equal(a.partner, b.partner)
    assert not torch.equal(a.images, resizemix(x, generator=gen(4)).images)
    cubic = resizemix(x, interpolation="bicubic", generator=gen(3))
    y0, y1, x0, x1 = resizemix_box(cubic)
    torch.testing.assert_close(cubic.images[..., y0:y1, x0:x1], F.interpolate(
        x[cubic.partner], size=(y1 - y0, x1 - x0), mode="bicubic", align_corners=False))


def test_resizemix_needs_no_change_to_schedule_or_policies():
    """ResizeMix is one registered function: the schedule builds it by name and the label policies treat its batches
    by what they declare (a token mask → TransMix's attention λ; not token-exact → PAL's area loss)."""
    assert MIXERS.get("resizemix") is resizemix
    schedule = build_schedule([dict(type="resizemix", prob=1.0, scale=(0.2, 0.5))], dict(patch_size=8, mask_size=8))
    x, labels = images(4, 32, 32), torch.tensor([0, 1, 2, 3])
    batch = schedule(x, generator=gen(1))
    assert batch.kind == "resizemix" and batch.token_mask.shape == (4, 16)
    logits, attn = torch.randn(4, 5, generator=gen(2)), torch.rand(4, 16, generator=gen(3))
    lam_attn = (batch.token_mask * attn).sum(1) / attn.sum(1)
    torch.testing.assert_close(TransMixLabels(5)(batch, logits, attn, labels).lam, (batch.lam_area + lam_attn) / 2)
    torch.testing.assert_close(PALLabels(5)(batch, logits, attn, labels).loss,
                               AreaLabels(5)(batch, logits, attn, labels).loss)


# ------------------------------------------------------------------------------------------------ registry, schedule
OFFICIAL = [dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
            dict(type="mixup", prob=0.25, alpha=0.8)]


def test_schedule_frequencies_follow_the_listed_probabilities():
    schedule = build_schedule(OFFICIAL, dict(mask_size=32, patch_size=16))
    g = gen(0)
    picks = [schedule.choose(g) for _ in range(8000)]
    for index, p in ((0, 0.5), (1, 0.25), (2, 0.25)):
        assert picks.count(index) / len(picks) == pytest.approx(p, abs=0.02), index
    partial = build_schedule([dict(type="mixup", prob=0.3)])
    picks = [partial.choose(g) for _ in range(4000)]
    assert picks.count(None) / len(picks) == pytest.approx(0.7, abs=0.03)


def test_schedule_pick_is_one_uniform_and_the_mixer_continues_the_stream():
    schedule = build_schedule(OFFICIAL, dict(mask_size=16, patch_size=8))
    x = images(4, 32, 32)
    for seed in range(12):
        batch = schedule(x, generator=gen(seed))
        g = gen(seed)
        u = float(torch.rand((), generator=g))
        name, fn = (("maskmix", lambda: maskmix(x, 16, 8, 1.0, g)) if u < 0.5 else
                    ("cutmix", lambda: cutmix(x, 1.0, 8, g)) if u < 0.75 else ("mixup", lambda: mixup(x, 0.8, g)))
        expected = fn()
        assert batch.kind == name and torch.equal(batch.images, expected.images)
        assert batch.token_exact == (name == "maskmix")


def test_empty_schedule_never_mixes_and_draws_nothing():
    off = build_schedule([])
    assert not off.mixes and not build_schedule(None).mixes
    x = images(4, 32, 32)
    g = gen(1)
    batch = off(x, generator=g)
    assert batch.kind == "none" and torch.equal(batch.images, x) and torch.all(batch.lam_area == 1)
    assert torch.equal(g.get_state(), gen(1).get_state())
    assert not build_schedule([dict(type="mixup", prob=0.0)]).mixes


def test_builder_binds_defaults_and_checks_keys_before_calling():
    mixer = build_mixer(dict(type="maskmix", alpha=2.0), dict(mask_size=16, patch_size=8, num_classes=10))
    assert isinstance(mixer, Mixer) and mixer.options == dict(mask_size=16, patch_size=8, alpha=2.0)
    assert build_mixer(dict(type="maskmix", mask_size=32), dict(mask_size=16, patch_size=8)).options["mask_size"] == 32
    assert build_mixer(dict(type="mixup"), dict(mask_size=16, patch_size=8)).options == {}
    with pytest.raises(ValueError, match=r"mixer \(mixup\): unknown key\(s\) \['alpah'\]"):
        build_mixer(dict(type="mixup", alpah=1.0))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['generator'\]"):
        build_mixer(dict(type="mixup", generator=None))
    with pytest.raises(ValueError, match="mixer type must be one of"):
        build_mixer(dict(type="saliencymix"))
    with pytest.raises(ValueError, match="no 'prob'"):
        build_schedule([dict(type="mixup")])
    with pytest.raises(ValueError, match="sum to"):
        build_schedule([dict(type="mixup", prob=0.7), dict(type="cutmix", prob=0.7)])
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got 1.5"):
        MixSchedule([(build_mixer(dict(type="mixup")), 1.5)])
    with pytest.raises(ValueError, match="list of mixer configs"):
        build_schedule(dict(maskmix_prob=0.5))
    with pytest.raises(ValueError, match="no registered mixer takes 'mask_sise'"):
        check_mix_defaults(dict(mask_sise=8))
    check_mix_defaults(dict(mask_size=8, patch_size=16))


def test_mixer_errors_name_the_problem_at_call():
    mixer = build_mixer(dict(type="maskmix"), dict(mask_size=20, patch_size=16))
    with pytest.raises(ValueError, match="mask_size=20 is not a multiple of patch_size=16"):
        mixer(images(2, 32, 32), generator=gen())


def test_a_registered_function_joins_the_schedule_unchanged():
    """The one call signature: a new mixer function registered under a name is built and called by the schedule,
    with labels / model passed only because it asks for them."""
    seen = {}

    def half_swap(images, labels, generator=None, share=0.5):
        seen["labels"] = labels
        return mixup(images, alpha=1.0, generator=generator)

    MIXERS.register("test-half-swap")(half_swap)
    try:
        schedule = build_schedule([dict(type="test-half-swap", prob=1.0, share=0.25)])
        labels = torch.arange(4)
        assert schedule(images(4, 8, 8), labels, torch.nn.Identity(), gen(0)).kind == "mixup"
        assert seen["labels"] is labels
    finally:
        MIXERS._entries.pop("test-half-swap")


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", [dict(type="mixup"), dict(type="cutmix", patch_size=16),
                                 dict(type="maskmix", mask_size=32, patch_size=16),
                                 dict(type="resizemix", patch_size=16)])
def test_mixers_take_a_generator_on_the_images_device(cfg):
    """A CUDA generator with CUDA images: draws are made on the generator's device and host arithmetic only sees
    Python numbers (a CPU constant times a CUDA draw failed once, in CutMix's box centre)."""
    x = torch.randn(8, 3, 224, 224, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = build_mixer(cfg)(x, generator=g)
    assert batch.images.device == x.device and batch.lam_area.device == x.device
    assert_permutation_without_fixed_point(batch.partner.cpu(), 8)

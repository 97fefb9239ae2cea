"""Pins the image-space semantics of SPEC §1: Mixup, CutMix, MaskMix, the schedule and the Beta sampler."""
import math

import pytest
import torch
from scipy import stats

from mixpro_core import MixSchedule, cutmix, maskmix, mixup, random_partner, sample_beta, token_mask_from_pixels


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
    with pytest.raises(ValueError, match="alpha"):
        sample_beta(0.0)


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
        torch.testing.assert_close(batch.lam_area, torch.full((16,), k / 16))
        torch.testing.assert_close(batch.lam_area, m.mean(dim=(1, 2, 3)))
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


# ------------------------------------------------------------------------------------------------ schedule
def test_schedule_default_frequencies():
    schedule = MixSchedule(mask_size=32, patch_size=16)
    g = gen(0)
    kinds = [schedule.choose(g) for _ in range(8000)]
    for kind, p in (("maskmix", 0.5), ("mixup", 0.25), ("cutmix", 0.25)):
        assert kinds.count(kind) / len(kinds) == pytest.approx(p, abs=0.02), kind


def test_schedule_switches():
    g = gen(1)
    never = MixSchedule(maskmix_prob=0.0)
    assert "maskmix" not in {never.choose(g) for _ in range(500)}
    assert {MixSchedule(maskmix_alpha=0.0).choose(g) for _ in range(500)} == {"mixup", "cutmix"}
    assert {MixSchedule(maskmix_prob=0.0, mixup_alpha=0.0).choose(g) for _ in range(200)} == {"cutmix"}
    assert {MixSchedule(maskmix_prob=0.0, cutmix_alpha=0.0).choose(g) for _ in range(200)} == {"mixup"}
    off = MixSchedule(maskmix_prob=0.0, mixup_alpha=0.0, cutmix_alpha=0.0)
    assert not off.mixes
    x = images(4, 32, 32)
    batch = off(x, g)
    assert batch.kind == "none" and torch.equal(batch.images, x) and torch.all(batch.lam_area == 1)
    only_maskmix = MixSchedule(maskmix_prob=1.0, mask_size=16, patch_size=8)
    batch = only_maskmix(x, g)
    assert batch.kind == "maskmix" and batch.token_mask.shape == (4, 16)


def test_schedule_validates_configuration():
    with pytest.raises(ValueError, match="mask_size=20 is not a multiple of patch_size=16"):
        MixSchedule(mask_size=20, patch_size=16)
    with pytest.raises(ValueError, match="mask_size or patch_size"):
        MixSchedule()
    with pytest.raises(ValueError, match="maskmix_prob"):
        MixSchedule(maskmix_prob=1.5, mask_size=16, patch_size=16)

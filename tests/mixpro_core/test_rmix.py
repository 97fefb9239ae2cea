"""Pins R-Mix (docs/methods.md, "R-Mix and RL-Mix"): pixel sources, label fractions, λ_eff, seeding, and a
side-effect-free saliency pass."""
import pytest
import torch
import torch.nn as nn

import torch.nn.functional as F

from mixpro_core import (MIXERS, build_schedule, input_saliency, mixed_targets, random_partner, region_fractions,
                         rmix, sample_beta)
from mixpro_core.rmix import GRIDS, QUANTILES, _to_pixels, cell_saliency, rmix_from_cells, salient_cells


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class SmallNet(nn.Module):
    """A CNN with BatchNorm and dropout: the saliency pass must not move its running statistics."""

    def __init__(self, classes=5):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(self.body(x))


def constant_images(b=4, h=16, w=16):
    """Sample i is the constant i+1: each mixed pixel's value tells whether it is own, partner's or a blend."""
    return (torch.arange(b, dtype=torch.float32) + 1).view(b, 1, 1, 1).expand(b, 3, h, w).clone()


def pixel_sources(batch, images, lam):
    """(own, partner, blend) bool maps (B,H,W) read off the mixed pixel values of constant images."""
    v = images[:, 0, 0, 0].view(-1, 1, 1)
    vp = v[batch.partner]
    m = batch.images[:, 0]
    own = torch.isclose(m, v.expand_as(m), atol=1e-6)
    partner = torch.isclose(m, vp.expand_as(m), atol=1e-6)
    blend = torch.isclose(m, (lam * v + (1 - lam) * vp).expand_as(m), atol=1e-6)
    assert torch.equal(batch.images[:, 0], batch.images[:, 1]) and torch.equal(batch.images[:, 1], batch.images[:, 2])
    return own, partner, blend


def test_pixel_sources_and_label_fractions_are_exact():
    images = constant_images()
    lam = 0.3
    partner = torch.tensor([1, 2, 3, 0])
    salient = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 1]], [[1, 1], [1, 1]]], dtype=torch.bool)
    batch = rmix_from_cells(images, salient, partner, lam)
    own, from_partner, blend = pixel_sources(batch, images, lam)
    assert torch.equal(own.int() + from_partner.int() + blend.int(), torch.ones_like(own, dtype=torch.int))
    # the source of every pixel follows the salient cells: agree → blend, only own → own, only partner → partner
    own_sal = _to_pixels(salient, 16, 16)[:, 0]
    other_sal = own_sal[partner]
    assert torch.equal(blend, own_sal == other_sal)
    assert torch.equal(own, own_sal & ~other_sal)
    assert torch.equal(from_partner, ~own_sal & other_sal)
    a_eq, a_own, a_partner = (t.float().mean((1, 2)) for t in (blend, own, from_partner))
    torch.testing.assert_close(a_eq + a_own + a_partner, torch.ones(4))
    torch.testing.assert_close(torch.stack(region_fractions(own_sal, other_sal)), torch.stack([a_eq, a_own, a_partner]))
    # λ_eff = A_eq·λ + A_a is the area λ, and the area label is the R-Mix label
    torch.testing.assert_close(batch.lam_area, a_eq * lam + a_own)
    y = torch.tensor([0, 1, 2, 3])
    onehot = torch.eye(5)[y]
    rmix_label = (a_eq[:, None] * (lam * onehot + (1 - lam) * onehot[partner]) + a_own[:, None] * onehot
                  + a_partner[:, None] * onehot[partner])
    torch.testing.assert_close(mixed_targets(y, partner, batch.lam_area, 5, smoothing=0.0), rmix_label)
    assert batch.kind == "rmix" and batch.token_mask is None and batch.pixel_mask.shape == (4, 1, 16, 16)
    torch.testing.assert_close(batch.pixel_mask.mean((1, 2, 3)), batch.lam_area)
    # image 3 is salient everywhere, its partner (0) only in one quarter: 3/4 own, 1/4 blend
    torch.testing.assert_close(batch.lam_area[3], torch.tensor(0.75 + 0.25 * lam))


def test_rmix_end_to_end_is_seeded_and_composed_of_its_parts():
    torch.manual_seed(0)
    model = SmallNet()
    images, labels = torch.randn(6, 3, 16, 16), torch.randint(0, 5, (6,))
    first = rmix(images, labels, model, alpha=1.0, generator=gen(3), num_classes=5)
    again = rmix(images, labels, model, alpha=1.0, generator=gen(3), num_classes=5)
    other = rmix(images, labels, model, alpha=1.0, generator=gen(4), num_classes=5)
    assert torch.equal(first.images, again.images) and torch.equal(first.lam_area, again.lam_area)
    assert not torch.equal(first.images, other.images)
    # the same draws, in the documented order, give the same batch through the public pieces
    g = gen(3)
    partner = random_partner(6, g)
    lam = sample_beta(1.0, g)
    grid = GRIDS[int(torch.randint(len(GRIDS), (), generator=g))]
    q = torch.tensor(QUANTILES)[torch.randint(len(QUANTILES), (6,), generator=g)]
    cells = cell_saliency(input_saliency(model, images, labels), grid)
    expected = rmix_from_cells(images, salient_cells(cells, q), partner, lam)
    assert torch.equal(first.partner, partner)
    torch.testing.assert_close(first.images, expected.images)
    torch.testing.assert_close(first.lam_area, expected.lam_area)
    assert ((first.lam_area >= 0) & (first.lam_area <= 1)).all()


def test_saliency_pass_has_no_side_effects():
    torch.manual_seed(0)
    model = SmallNet().train()
    model.head.eval()  # a submodule deliberately in eval mode keeps its own flag
    model.head.weight.grad = torch.full_like(model.head.weight, 0.5)
    bn = model.body[1]
    stats = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    rmix(images, labels, model, generator=gen(0))
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == stats[2]
    assert torch.equal(model.head.weight.grad, torch.full_like(model.head.weight, 0.5))
    assert all(p.grad is None for name, p in model.named_parameters() if name != "head.weight")
    assert model.training and model.body.training and not model.head.training
    assert not images.requires_grad


def test_saliency_is_the_channel_rms_of_the_input_gradient_and_accepts_soft_labels():
    torch.manual_seed(0)
    model = SmallNet().eval()
    images, labels = torch.randn(3, 3, 8, 8), torch.tensor([1, 0, 4])
    x = images.clone().requires_grad_(True)
    nn.functional.cross_entropy(model(x), labels, reduction="sum").backward()
    torch.testing.assert_close(input_saliency(model, images, labels), x.grad.pow(2).mean(1).sqrt())
    torch.testing.assert_close(input_saliency(model, images, torch.eye(5)[labels]), x.grad.pow(2).mean(1).sqrt())
    a = rmix(images, labels, model, generator=gen(1), num_classes=5)
    b = rmix(images, torch.eye(5)[labels], model, generator=gen(1), num_classes=5)
    assert torch.equal(a.images, b.images)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        rmix(images, torch.tensor([0, 1, 7]), model, num_classes=5)
    with pytest.raises(ValueError, match="class ids"):
        rmix(images, torch.zeros(3, 5, 1), model)


def test_cells_and_quantile_threshold():
    sal = torch.zeros(1, 30, 30)
    sal[0, :8, :8] = 4.0  # the first band of a 4-band split of 30 pixels is 8 pixels wide
    cells = cell_saliency(sal, 4)
    assert cells.shape == (1, 4, 4)
    torch.testing.assert_close(cells.sum(), torch.tensor(1.0))
    assert cells[0, 0, 0] == 1.0 and cells.flatten()[1:].abs().sum() == 0
    values = torch.arange(16, dtype=torch.float32).view(1, 4, 4).repeat(3, 1, 1)
    marked = salient_cells(values, torch.tensor([0.0, 0.99, 0.5]))
    assert marked[0].all()
    assert marked[1].sum() == 1 and marked[1, 3, 3]
    assert torch.equal(marked[2].flatten(), values[2].flatten() >= 7.5)
    with pytest.raises(ValueError, match="grid"):
        cell_saliency(sal, 0)


def test_rmix_in_a_schedule_with_its_probability_and_the_other_entries_as_fallback():
    torch.manual_seed(0)
    model = SmallNet()
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    assert MIXERS.get("rmix") is rmix
    always = build_schedule([dict(type="rmix", prob=1.0, alpha=1.0, grid=2)], dict(num_classes=5, patch_size=4))
    batch = always(images, labels, model, gen(0))
    expected = rmix(images, labels, model, 1.0, 2, gen(0), num_classes=5)  # prob 1: no schedule draw
    assert batch.kind == "rmix" and torch.equal(batch.images, expected.images)
    mixed = build_schedule([dict(type="rmix", prob=0.5, grid=2), dict(type="mixup", prob=0.5, alpha=0.8)])
    kinds = {mixed(images, labels, model, gen(s)).kind for s in range(12)}
    assert kinds == {"rmix", "mixup"}
    with pytest.raises(ValueError, match="alpha"):
        build_schedule([dict(type="rmix", prob=1.0, alpha=0.0)])(images, labels, model, gen(0))


def old_salient_cells(cells, q):
    """The quantile threshold as written out before torch.quantile replaced it (linear interpolation)."""
    flat = cells.reshape(cells.shape[0], -1)
    ordered = flat.sort(dim=1).values
    pos = q.clamp(0, 1) * (flat.shape[1] - 1)
    lo, hi = pos.floor().long(), pos.ceil().long()
    v_lo, v_hi = ordered.gather(1, lo[:, None]), ordered.gather(1, hi[:, None])
    threshold = v_lo + (v_hi - v_lo) * (pos - lo.to(pos.dtype))[:, None]
    return (flat >= threshold - 1e-12 * threshold.abs()).reshape(cells.shape)


def test_torch_quantile_threshold_equals_the_written_out_one():
    g = gen(0)
    for grid in (2, 3, 4, 7):
        cells = torch.rand(256, grid, grid, generator=g)
        cells[:8] = 0.25  # ties: every cell equal
        cells[8:16, 0] = cells[8:16, 1]  # partial ties
        q = torch.tensor(QUANTILES)[torch.randint(len(QUANTILES), (256,), generator=g)]
        assert torch.equal(salient_cells(cells, q), old_salient_cells(cells, q))


def test_cell_pooling_is_adaptive_avg_pool_when_the_grid_divides_and_differs_otherwise():
    sal = torch.rand(3, 16, 16, generator=gen(1))
    for grid in (2, 4, 8):
        pooled = F.adaptive_avg_pool2d(sal[:, None], grid)[:, 0]
        torch.testing.assert_close(cell_saliency(sal, grid), pooled / pooled.sum((1, 2), keepdim=True))
    # 3 cells over 16 rows: adaptive pooling's bins overlap (rows 5 and 10 count twice), the mixing's bands do not
    pooled = F.adaptive_avg_pool2d(sal[:, None], 3)[:, 0]
    assert not torch.allclose(cell_saliency(sal, 3), pooled / pooled.sum((1, 2), keepdim=True))


def test_saliency_pass_is_fp32_under_autocast():
    torch.manual_seed(0)
    model = SmallNet().eval()
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    reference = input_saliency(model, images, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saliency, logits = input_saliency(model, images, labels, return_logits=True)
    assert saliency.dtype == logits.dtype == torch.float32
    torch.testing.assert_close(saliency, reference, rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_rmix_runs_on_the_images_device():
    model = SmallNet().cuda()
    images, labels = torch.randn(4, 3, 16, 16, device="cuda"), torch.tensor([0, 1, 2, 3], device="cuda")
    batch = rmix(images, labels, model, generator=gen(0))  # CPU generator, CUDA data (as MixClassifier does)
    assert batch.images.is_cuda and batch.lam_area.is_cuda and batch.partner.is_cuda

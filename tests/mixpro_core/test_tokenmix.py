"""TokenMix (docs/methods.md, "TokenMix"): block masks, the mixed batch, the teacher maps on the token grid, the
targets and the BCE, each against a hand computation or an explicit version."""
import math

import pytest
import torch

from mixpro_core.mixing import token_mask_from_pixels
from mixpro_core.tokenmix import (bce_with_logits, block_mask, gt_token_maps, target_tokens, tokenmix_batch,
                                  tokenmix_targets)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_target_tokens_is_the_official_count():
    assert target_tokens(196, 0.5, 14) == 112  # min(196, int(0.5·196) + 14)
    assert target_tokens(49, 0.5, 7) == 31
    assert target_tokens(196, 0.1, 30) == 196  # capped at N


def test_block_mask_reaches_its_target_and_never_exceeds_it():
    counts = [int(block_mask(14, 14, 112, gen(s)).sum()) for s in range(60)]
    assert max(counts) <= 112
    assert sum(c == 112 for c in counts) >= 55  # the BEiT loop stops short only when a round finds no block
    one = block_mask(14, 14, 1, gen(3))
    assert int(one.sum()) == 1 and set(one.unique().tolist()) <= {0.0, 1.0}


def test_block_mask_accepts_only_blocks_strictly_smaller_than_the_grid():
    # the official test is h < grid_h and w < grid_w: on a one-row grid no block is ever accepted
    assert int(block_mask(1, 8, 3, gen(0)).sum()) == 0
    assert int(block_mask(2, 8, 3, gen(0)).sum()) == 3


def test_block_mask_is_reproducible_under_a_seed():
    assert torch.equal(block_mask(14, 14, 112, gen(7)), block_mask(14, 14, 112, gen(7)))
    assert not torch.equal(block_mask(14, 14, 112, gen(7)), block_mask(14, 14, 112, gen(8)))


def test_tokenmix_batch_pastes_the_flipped_batch_inside_the_mask():
    x = torch.randn(4, 3, 28, 28, generator=gen(1))
    batch = tokenmix_batch(x, patch_size=4, generator=gen(2))
    assert batch.partner.tolist() == [3, 2, 1, 0]
    own = batch.pixel_mask
    assert torch.equal(batch.images, x * own + x.flip(0) * (1 - own))
    taken = 1 - batch.token_mask[0]
    assert int(taken.sum()) == 31  # 7×7 grid: int(0.5·49) + 7
    assert torch.allclose(batch.lam_area, torch.full((4,), 1 - 31 / 49))
    assert torch.equal(batch.token_mask, token_mask_from_pixels(own, 4))
    assert batch.token_exact


def planted_maps():
    """Two images on a 2×2 token grid: image 0's map is all on token 0, image 1's all on token 3."""
    maps = torch.zeros(2, 4)
    maps[0, 0] = 1.0
    maps[1, 3] = 1.0
    return maps


def test_weights_come_from_the_visible_side_of_the_mask():
    taken = torch.tensor([0.0, 0.0, 0.0, 1.0])  # token 3 comes from the partner
    partner = torch.tensor([1, 0])
    labels = torch.tensor([2, 0])
    targets, w_a = tokenmix_targets(planted_maps(), taken, labels, partner, num_classes=4, smoothing=0.1)
    # image 0 keeps token 0 (all its mass) and receives token 3 of image 1 (all of image 1's mass);
    # image 1 loses token 3 (all its mass) and receives image 0's token 3 (none of its mass)
    assert w_a.tolist() == [1.0, 0.0]
    off = 0.1 / 8
    expected = torch.tensor([[0.975, 2 * off, 0.975, 2 * off],
                             [2 * off - 0.05, 2 * off, 2 * off - 0.05, 2 * off]])
    assert torch.allclose(targets, expected, atol=1e-7)


def test_targets_of_the_same_class_add_up():
    maps = torch.full((2, 4), 0.25)
    taken = torch.tensor([1.0, 0.0, 0.0, 0.0])
    targets, _ = tokenmix_targets(maps, taken, torch.tensor([1, 1]), torch.tensor([1, 0]), 3, 0.0)
    assert torch.allclose(targets, torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))


def test_bce_is_the_mean_over_samples_and_classes():
    z = torch.randn(3, 5, generator=gen(4))
    t = torch.rand(3, 5, generator=gen(5))
    explicit = -(t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z))).sum() / 15
    assert math.isclose(float(bce_with_logits(z, t)), float(explicit), rel_tol=1e-5)


def topk_maps(label):
    """A 4×4 TokenLabeling top-2 map with class ``label`` scored 1..16 by cell at top-1, except cell (0,0) where it
    is absent from the top 2."""
    scores = torch.stack([torch.arange(1.0, 17.0).view(4, 4), torch.full((4, 4), 0.5)])
    indices = torch.stack([torch.full((4, 4), label), torch.full((4, 4), label + 1)])
    indices[:, 0, 0] = torch.tensor([label + 2, label + 3])
    return scores.unsqueeze(0), indices.unsqueeze(0)


def test_gt_token_maps_pool_the_crop_of_the_gt_class_and_normalise():
    scores, indices = topk_maps(5)
    gt = torch.arange(1.0, 17.0).view(4, 4)
    gt[0, 0] = 0.0
    full = gt_token_maps(scores, indices, torch.tensor([5]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), (4, 4))
    assert torch.allclose(full[0], gt / gt.sum(), atol=1e-6)
    # the right half of the map (x from 0.5): each output cell's bin centre falls on one map cell
    right = gt_token_maps(scores, indices, torch.tensor([5]), torch.tensor([[0.5, 0.0, 1.0, 1.0]]), (4, 2))
    assert torch.allclose(right[0], gt[:, 2:] / gt[:, 2:].sum(), atol=1e-6)
    # the official order reads the box transposed
    swapped = gt_token_maps(scores, indices, torch.tensor([5]), torch.tensor([[0.0, 0.5, 1.0, 1.0]]), (4, 2),
                            official_box_order=True)
    assert torch.allclose(swapped, right, atol=1e-6)


def test_gt_token_maps_are_zero_when_the_class_is_not_in_the_top_k():
    scores, indices = topk_maps(5)
    out = gt_token_maps(scores, indices, torch.tensor([9]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), (2, 2))
    assert torch.count_nonzero(out) == 0


def test_teacher_weights_follow_a_planted_region_through_the_mask():
    # image 0's class lives in the top-left quarter of its map; masking exactly that quarter (taken from the
    # partner) leaves image 0 none of its class and gives it all of the partner's mass that lies there
    b, k = 2, 1
    scores = torch.zeros(b, k, 4, 4)
    scores[0, 0, :2, :2] = 1.0
    scores[1, 0, :2, :2] = 1.0
    indices = torch.tensor([3, 1]).view(b, 1, 1, 1).expand(b, k, 4, 4)
    labels = torch.tensor([3, 1])
    maps = gt_token_maps(scores, indices, labels, torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2), (2, 2))
    taken = torch.tensor([1.0, 0.0, 0.0, 0.0])
    targets, w_a = tokenmix_targets(maps, taken, labels, torch.tensor([1, 0]), num_classes=4, smoothing=0.0)
    assert torch.allclose(w_a, torch.zeros(2), atol=1e-6)
    assert torch.allclose(targets[0], torch.tensor([0.0, 1.0, 0.0, 0.0]), atol=1e-6)


def test_tokenmix_batch_rejects_a_grid_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        tokenmix_batch(torch.zeros(2, 1, 30, 30), patch_size=4)


class Recorder(torch.nn.Module):
    """A linear classifier on the flattened image that keeps every input it sees."""

    def __init__(self, pixels, num_classes):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(pixels, num_classes)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.fc(x.flatten(1))


def explicit_bce(z, t):
    return -(t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z))).mean()


@pytest.mark.parametrize("seed", range(4))
def test_tokenmix_area_block_step_is_bce_against_the_area_weighted_targets(seed):
    from mixpro_core.tokenmix import TokenMixArea

    x = torch.randn(4, 1, 16, 16, generator=gen(seed))
    labels = torch.tensor([0, 1, 2, 1])
    model, eps, k = Recorder(256, 3), 0.1, 3
    result = TokenMixArea(num_classes=k, smoothing=eps, patch_size=4, switch_prob=1.0)(model, x, labels,
                                                                                        gen(100 + seed))
    mixed = model.seen[0]
    # tokens that differ from the image came from the flipped batch; the same tokens for every image
    taken = (mixed != x).view(4, 1, 4, 4, 4, 4).any(dim=(1, 3, 5)).float()
    assert torch.equal(taken[0], taken[1]) and int(taken[0].sum()) == 12  # int(0.5·16) + 4
    own = 1 - taken[0].repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.equal(mixed, x * own + x.flip(0) * (1 - own))
    w_a = 1 - taken[0].mean()
    targets = torch.full((4, k), eps / k)
    for i in range(4):
        targets[i, labels[i]] += w_a - eps / 2
        targets[i, labels[3 - i]] += (1 - w_a) - eps / 2
    assert torch.allclose(result.loss, explicit_bce(model.fc(mixed.flatten(1)), targets), atol=1e-6)
    assert torch.allclose(result.lam, torch.full((4,), float(w_a)))


def test_tokenmix_area_mixup_step_is_bce_against_the_mixup_targets():
    from mixpro_core.tokenmix import TokenMixArea

    x = torch.randn(4, 1, 16, 16, generator=gen(5))
    labels = torch.tensor([0, 1, 2, 1])
    model, eps, k = Recorder(256, 3), 0.1, 3
    result = TokenMixArea(num_classes=k, smoothing=eps, patch_size=4, switch_prob=0.0)(model, x, labels, gen(6))
    mixed, flip = model.seen[0], x.flip(0)
    lam = float(result.lam[0])
    assert torch.allclose(mixed, lam * x + (1 - lam) * flip, atol=1e-6)
    soft = torch.nn.functional.one_hot(labels, k).float() * (1 - eps) + eps / k
    targets = lam * soft + (1 - lam) * soft.flip(0)
    assert torch.allclose(result.loss, explicit_bce(model.fc(mixed.flatten(1)), targets), atol=1e-6)

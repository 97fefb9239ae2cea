"""TokenMix with the teacher's label maps (``tokenmix``; docs/methods.md, "TokenMix"): on a planted map and a fixed
generator its loss is the BCE against the targets written out by hand from the mask the batch shows, and it refuses
to run without maps."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mixpro_core.tokenmix import TokenMix, TokenMixArea

B, K, GRID, PATCH = 4, 5, 4, 4


class Recorder(nn.Module):
    """A backbone that keeps its input and answers fixed logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.seen = logits, None

    def forward(self, x):
        self.seen = x
        return self.logits


def planted_batch():
    """Images with distinct constant values; TokenLabeling-format maps (top 2 on the 4×4 grid) whose GT-class scores
    are known; the whole image as the crop (so each map cell is one token: roi_align samples the cell centres)."""
    g = torch.Generator().manual_seed(5)
    images = torch.arange(1.0, B + 1).view(B, 1, 1, 1).expand(B, 3, GRID * PATCH, GRID * PATCH).clone()
    labels = torch.tensor([0, 3, 1, 3])
    gt_scores = torch.rand(B, GRID, GRID, generator=g) + 0.1
    gt_scores[1] = 0.0
    gt_scores[1, 0, 2] = 0.9  # image 1's class sits on one token only
    scores = torch.stack([gt_scores, torch.rand(B, GRID, GRID, generator=g)], 1)  # (B, 2, 4, 4)
    other = (labels + 1) % K
    indices = torch.stack([labels.view(B, 1, 1).expand(B, GRID, GRID), other.view(B, 1, 1).expand(B, GRID, GRID)], 1)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(B, 4)
    return images, labels, dict(label_scores=scores, label_indices=indices, crop_box=boxes), gt_scores


def test_tokenmix_loss_is_the_bce_against_the_targets_written_by_hand():
    images, labels, extras, gt_scores = planted_batch()
    logits = torch.randn(B, K, generator=torch.Generator().manual_seed(9))
    backbone = Recorder(logits)
    method = TokenMix(K, smoothing=0.1, patch_size=PATCH, switch_prob=1.0, extra_tokens=1)
    result = method(backbone, images, labels, torch.Generator().manual_seed(3), extras=extras)

    # the mask as the mixed batch shows it: a token is the partner's where its pixels changed
    taken = (backbone.seen != images).any(1).float().view(B, GRID, PATCH, GRID, PATCH).amax((2, 4))
    assert 0 < taken[0].sum() < GRID * GRID and torch.equal(taken, taken[:1].expand_as(taken))
    m = taken[0]
    p = gt_scores / (gt_scores.sum((1, 2), keepdim=True) + 1e-8)
    eps, expected = 0.1, torch.zeros(B, K)
    for i in range(B):
        j = B - 1 - i  # the flipped partner
        w_a = float(((1 - m) * p[i]).sum())
        w_b = float((m * p[j]).sum())
        expected[i] = eps / (2 * K) * 2
        expected[i, labels[i]] += w_a - eps / 2
        expected[i, labels[j]] += w_b - eps / 2
        assert float(result.lam[i]) == pytest.approx(w_a, abs=1e-6)
    loss = F.binary_cross_entropy_with_logits(logits, expected)
    assert float(result.loss) == pytest.approx(float(loss), rel=1e-6)
    # the teacher's weights differ from the area ones (what tokenmix-area would give)
    area = TokenMixArea(K, patch_size=PATCH, switch_prob=1.0, extra_tokens=1)
    assert float(area(Recorder(logits), images, labels, torch.Generator().manual_seed(3)).loss) != pytest.approx(
        float(loss), rel=1e-3)


def test_tokenmix_refuses_to_run_without_the_maps_and_names_the_teacher_free_variant():
    images, labels, extras, _ = planted_batch()
    method = TokenMix(K, patch_size=PATCH)
    with pytest.raises(ValueError, match="tokenmix-area") as err:
        method(Recorder(torch.zeros(B, K)), images, labels, torch.Generator().manual_seed(0))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="crop_box missing"):
        method(Recorder(torch.zeros(B, K)), images, labels, torch.Generator().manual_seed(0),
               extras={k: v for k, v in extras.items() if k != "crop_box"})

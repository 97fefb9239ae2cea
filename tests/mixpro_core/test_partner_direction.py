"""Sample i is mixed with sample partner[i], in the images and in the labels alike (docs/methods.md, "Mixup",
"CutMix", "MaskMix", "ResizeMix", "PAL").

Every case uses a partner that is not its own inverse (a 3-cycle, or a random single cycle of 5–9 samples), so a
loss or a mixer that reads ``partner.argsort()`` (the inverse) or a shifted partner gives different numbers; a
2-sample swap could not tell them apart. Expected values are written out per sample, not by indexing with the
partner."""
import pytest
import torch
import torch.nn.functional as F

from mixpro_core import (AreaLabels, MixBatch, PALLabels, TransMixLabels, cutmix, maskmix, mixed_cross_entropy,
                         mixed_targets, mixup, pal_lambda, random_partner, resizemix, soft_target_cross_entropy)

CYCLE = torch.tensor([1, 2, 0])  # 0 ← 1, 1 ← 2, 2 ← 0: its inverse is [2, 0, 1]
LABELS = torch.tensor([0, 1, 2])
LAM = torch.tensor([0.7, 0.2, 0.9])
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 1.5], [-0.3, 1.1, 0.4]])


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def assert_not_an_involution(partner):
    """The test is only as sharp as its partner: an involution equals its inverse."""
    assert not torch.equal(partner[partner], torch.arange(len(partner))), partner


def per_sample_mixed_ce(logits, labels, partner, lam, smoothing=0.0):
    """mean_i [λ_i·CE(logits_i, y_i) + (1 − λ_i)·CE(logits_i, y_partner[i])], one sample at a time."""
    total = 0.0
    for i in range(len(labels)):
        j = int(partner[i])
        own = F.cross_entropy(logits[i:i + 1], labels[i:i + 1], label_smoothing=smoothing)
        other = F.cross_entropy(logits[i:i + 1], labels[j:j + 1], label_smoothing=smoothing)
        total = total + float(lam[i]) * own + (1 - float(lam[i])) * other
    return total / len(labels)


def test_mixed_targets_on_a_three_cycle_by_hand():
    targets = mixed_targets(LABELS, CYCLE, LAM, 3, smoothing=0.0)
    expected = torch.tensor([[0.7, 0.3, 0.0],    # sample 0 (class 0) mixed with sample 1 (class 1)
                             [0.0, 0.2, 0.8],    # sample 1 (class 1) mixed with sample 2 (class 2)
                             [0.1, 0.0, 0.9]])   # sample 2 (class 2) mixed with sample 0 (class 0)
    torch.testing.assert_close(targets, expected)
    smoothed = mixed_targets(LABELS, CYCLE, LAM, 3, smoothing=0.3)
    torch.testing.assert_close(smoothed, expected * 0.7 + 0.1)


def test_mixed_cross_entropy_on_a_three_cycle_by_hand():
    logp = F.log_softmax(LOGITS, dim=1)
    expected = -(0.7 * logp[0, 0] + 0.3 * logp[0, 1]
                 + 0.2 * logp[1, 1] + 0.8 * logp[1, 2]
                 + 0.9 * logp[2, 2] + 0.1 * logp[2, 0]) / 3
    torch.testing.assert_close(mixed_cross_entropy(LOGITS, LABELS, CYCLE, LAM), expected)
    inverse = CYCLE.argsort()
    assert not torch.allclose(mixed_cross_entropy(LOGITS, LABELS, inverse, LAM), expected, atol=1e-3)


@pytest.mark.parametrize("batch_size", [5, 9])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixed_losses_follow_a_random_derangement(batch_size, smoothing):
    g = gen(batch_size)
    partner = random_partner(batch_size, g)
    assert_not_an_involution(partner)
    logits = torch.randn(batch_size, 6, generator=g)
    labels = torch.randint(6, (batch_size,), generator=g)
    labels[: min(6, batch_size)] = torch.arange(min(6, batch_size))  # distinct classes, so partners are told apart
    lam = torch.rand(batch_size, generator=g)
    expected = per_sample_mixed_ce(logits, labels, partner, lam, smoothing)
    torch.testing.assert_close(mixed_cross_entropy(logits, labels, partner, lam, smoothing), expected)
    soft = soft_target_cross_entropy(logits, mixed_targets(labels, partner, lam, 6, smoothing))
    torch.testing.assert_close(soft, expected)
    for wrong in (partner.argsort(), partner.roll(1), partner[partner]):
        assert abs(float(mixed_cross_entropy(logits, labels, wrong, lam, smoothing)) - float(expected)) > 1e-3


@pytest.mark.parametrize("batch_size", [5, 7])
def test_every_mixer_takes_the_partners_pixels_from_partner_i(batch_size):
    x = torch.randn(batch_size, 2, 16, 16, generator=gen(1))
    checked = dict(mixup=0, cutmix=0, maskmix=0, resizemix=0)  # samples that show pixels of both images
    for seed in range(4):
        batches = [mixup(x, generator=gen(seed)), cutmix(x, patch_size=4, generator=gen(seed)),
                   maskmix(x, mask_size=4, patch_size=4, generator=gen(seed)),
                   resizemix(x, scale=(0.4, 0.6), generator=gen(seed))]
        for batch in batches:
            assert_not_an_involution(batch.partner)
            for i in range(batch_size):
                j = int(batch.partner[i])
                if batch.kind == "mixup":
                    lam = float(batch.lam_area[i])
                    torch.testing.assert_close(batch.images[i], lam * x[i] + (1 - lam) * x[j])
                    checked["mixup"] += 0.01 < lam < 0.99
                    continue
                own = batch.pixel_mask[i].bool()
                checked[batch.kind] += bool(0 < own.sum() < own.numel())
                if batch.kind == "resizemix":
                    hole = (~own[0]).nonzero()
                    (y0, x0), (y1, x1) = hole.min(0).values.tolist(), (hole.max(0).values + 1).tolist()
                    pasted = F.interpolate(x[j:j + 1], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
                    torch.testing.assert_close(batch.images[i, :, y0:y1, x0:x1], pasted[0])
                    assert torch.equal(batch.images[i][own.expand(2, -1, -1)], x[i][own.expand(2, -1, -1)])
                else:
                    assert torch.equal(batch.images[i], torch.where(own, x[i], x[j]))
    assert min(checked.values()) >= 2 * batch_size, checked  # the draws mixed enough samples for the check to bite


def token_exact_batch(partner, lam_area, token_mask):
    return MixBatch(images=torch.zeros(len(partner), 1, 2, 2), partner=partner, lam_area=lam_area, pixel_mask=None,
                    token_mask=token_mask, kind="maskmix", token_exact=True)


def test_pal_and_transmix_read_the_partner_label_of_partner_i():
    """PAL's area target inside α, PAL's hard-label loss and TransMix's soft targets, on a 3-cycle, by hand."""
    token_mask = torch.tensor([[1., 0., 0., 1.], [0., 1., 1., 1.], [1., 0., 0., 0.]])
    attn = torch.tensor([[0.4, 0.1, 0.1, 0.4], [0.7, 0.1, 0.1, 0.1], [0.1, 0.3, 0.3, 0.3]])
    lam_attn = torch.tensor([0.8, 0.3, 0.1])
    batch = token_exact_batch(CYCLE, LAM, token_mask)
    area_targets = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.2, 0.8], [0.1, 0.0, 0.9]]) * 0.9 + 0.1 / 3
    alpha = F.cosine_similarity(LOGITS.softmax(1), area_targets, dim=1)
    lam_pal = alpha * lam_attn + (1 - alpha) * LAM
    torch.testing.assert_close(pal_lambda(batch, LOGITS, attn, LABELS, 3, smoothing=0.1), lam_pal)
    logp = F.log_softmax(LOGITS, dim=1)
    hard = -(lam_pal[0] * logp[0, 0] + (1 - lam_pal[0]) * logp[0, 1]
             + lam_pal[1] * logp[1, 1] + (1 - lam_pal[1]) * logp[1, 2]
             + lam_pal[2] * logp[2, 2] + (1 - lam_pal[2]) * logp[2, 0]) / 3
    torch.testing.assert_close(PALLabels(3)(batch, LOGITS, attn, LABELS).loss, hard)
    lam_tm = (LAM + lam_attn) / 2
    soft_targets = torch.stack([lam_tm[0] * torch.tensor([1., 0, 0]) + (1 - lam_tm[0]) * torch.tensor([0., 1, 0]),
                                lam_tm[1] * torch.tensor([0., 1, 0]) + (1 - lam_tm[1]) * torch.tensor([0., 0, 1]),
                                lam_tm[2] * torch.tensor([0., 0, 1]) + (1 - lam_tm[2]) * torch.tensor([1., 0, 0])])
    expected = -(soft_targets * 0.9 + 0.1 / 3).mul(logp).sum(1).mean()
    torch.testing.assert_close(TransMixLabels(3)(batch, LOGITS, attn, LABELS).loss, expected)
    area = -(area_targets * logp).sum(1).mean()
    torch.testing.assert_close(AreaLabels(3)(batch, LOGITS, attn, LABELS).loss, area)

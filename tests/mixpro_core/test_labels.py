"""Pins the label-space semantics of SPEC §1 against hand-computed small cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixpro_core import (AreaLabels, MixBatch, PALLabels, TransMixLabels, area_lambda, attention_lambda,
                         mixed_cross_entropy, mixed_targets, pal_lambda, progressive_factor, smooth_one_hot,
                         soft_target_cross_entropy, transmix_lambda)


def make_batch(kind, lam_area, token_mask=None):
    lam_area = torch.tensor(lam_area)
    b = len(lam_area)
    return MixBatch(images=torch.zeros(b, 1, 2, 2), partner=torch.tensor([1, 0]), lam_area=lam_area,
                    pixel_mask=None, token_mask=None if token_mask is None else torch.tensor(token_mask), kind=kind)


LABELS = torch.tensor([0, 2])
MASK = [[1., 0., 1., 0.], [0., 0., 0., 1.]]
ATTN = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.05, 0.05, 0.1, 0.3]])  # rows need not sum to 1
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 1.5]])


def test_smooth_one_hot_and_mixed_targets_by_hand():
    y = smooth_one_hot(torch.tensor([0, 1]), 4, 0.1)
    torch.testing.assert_close(y, torch.tensor([[0.925, 0.025, 0.025, 0.025], [0.025, 0.925, 0.025, 0.025]]))
    t = mixed_targets(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0.7, 0.2]), 4, 0.1)
    torch.testing.assert_close(t[0], 0.7 * y[0] + 0.3 * y[1])
    torch.testing.assert_close(t[1], 0.2 * y[1] + 0.8 * y[0])
    torch.testing.assert_close(t.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        smooth_one_hot(torch.zeros(2, 3, dtype=torch.long), 3)


def test_mixed_targets_match_timm_for_a_flip_partner():
    from timm.data.mixup import mixup_target
    labels = torch.tensor([3, 1, 4, 1, 5])
    ours = mixed_targets(labels, labels.new_tensor([4, 3, 2, 1, 0]), 0.3, 10, 0.1)
    torch.testing.assert_close(ours, mixup_target(labels, 10, lam=0.3, smoothing=0.1))


def test_attention_lambda_by_hand():
    lam = attention_lambda(torch.tensor(MASK), ATTN)
    torch.testing.assert_close(lam, torch.tensor([0.4 / 1.0, 0.3 / 0.5]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        attention_lambda(torch.ones(2, 3), ATTN)


def test_progressive_factor_is_cosine_of_softmax_and_targets():
    targets = mixed_targets(LABELS, torch.tensor([1, 0]), torch.tensor([0.75, 0.25]), 3, 0.1)
    p = np.exp(LOGITS.numpy()) / np.exp(LOGITS.numpy()).sum(1, keepdims=True)
    t = targets.numpy()
    expected = (p * t).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(t, axis=1)
    torch.testing.assert_close(progressive_factor(LOGITS, targets), torch.from_numpy(expected).float())


def test_transmix_lambda_on_cutmix_only():
    cut = make_batch("cutmix", [0.75, 0.25], MASK)
    torch.testing.assert_close(transmix_lambda(cut, ATTN), torch.tensor([(0.75 + 0.4) / 2, (0.25 + 0.6) / 2]))
    for kind in ("mixup", "maskmix", "none"):
        torch.testing.assert_close(transmix_lambda(make_batch(kind, [0.75, 0.25], MASK), ATTN),
                                   torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(transmix_lambda(cut, None), cut.lam_area)
    torch.testing.assert_close(area_lambda(cut), cut.lam_area)


def test_pal_lambda_by_hand_and_gradient_switch():
    batch = make_batch("maskmix", [0.75, 0.25], MASK)
    logits = LOGITS.clone().requires_grad_(True)
    lam = pal_lambda(batch, logits, ATTN, LABELS, 3, smoothing=0.1)
    # by hand: area targets with smoothing 0.1, α = cosine(softmax, targets)
    y = np.full((2, 3), 0.1 / 3)
    y[0, 0] += 0.9
    y[1, 2] += 0.9
    area = np.stack([0.75 * y[0] + 0.25 * y[1], 0.25 * y[1] + 0.75 * y[0]])
    p = np.exp(LOGITS.numpy()) / np.exp(LOGITS.numpy()).sum(1, keepdims=True)
    alpha = (p * area).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(area, axis=1)
    lam_attn = np.array([0.4, 0.6])
    expected = alpha * lam_attn + (1 - alpha) * np.array([0.75, 0.25])
    torch.testing.assert_close(lam.detach(), torch.from_numpy(expected).float())
    assert lam.requires_grad, "official PAL keeps the gradient of the softmax inside α"
    assert not pal_lambda(batch, logits, ATTN, LABELS, 3, detach_factor=True).requires_grad
    for kind in ("mixup", "cutmix"):
        torch.testing.assert_close(pal_lambda(make_batch(kind, [0.75, 0.25], MASK), LOGITS, ATTN, LABELS, 3),
                                   torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(pal_lambda(batch, LOGITS, None, LABELS, 3), batch.lam_area)


def test_losses_by_hand():
    targets = torch.tensor([[0.6, 0.4, 0.0], [0.1, 0.1, 0.8]])
    torch.testing.assert_close(soft_target_cross_entropy(LOGITS, targets), F.cross_entropy(LOGITS, targets))
    lam = torch.tensor([0.3, 0.9])
    partner = torch.tensor([1, 0])
    logp = F.log_softmax(LOGITS, 1)
    expected = (-(0.3 * logp[0, 0] + 0.7 * logp[0, 2]) - (0.9 * logp[1, 2] + 0.1 * logp[1, 0])) / 2
    torch.testing.assert_close(mixed_cross_entropy(LOGITS, LABELS, partner, lam), expected)
    # with smoothing the mixed CE equals soft-target CE on the mixed smoothed targets
    torch.testing.assert_close(mixed_cross_entropy(LOGITS, LABELS, partner, lam, smoothing=0.1),
                               soft_target_cross_entropy(LOGITS, mixed_targets(LABELS, partner, lam, 3, 0.1)))


def test_policies_implement_each_official_loss():
    maskmix_batch = make_batch("maskmix", [0.75, 0.25], MASK)
    cutmix_batch = make_batch("cutmix", [0.75, 0.25], MASK)
    area = AreaLabels(3)
    transmix = TransMixLabels(3)
    pal = PALLabels(3)
    assert not area.needs_attention and transmix.needs_attention and pal.needs_attention

    def soft(lam):
        return soft_target_cross_entropy(LOGITS, mixed_targets(LABELS, torch.tensor([1, 0]), lam, 3, 0.1))

    torch.testing.assert_close(area.loss(cutmix_batch, LOGITS, ATTN, LABELS), soft(cutmix_batch.lam_area))
    torch.testing.assert_close(transmix.loss(cutmix_batch, LOGITS, ATTN, LABELS),
                               soft(transmix_lambda(cutmix_batch, ATTN)))
    torch.testing.assert_close(transmix.loss(maskmix_batch, LOGITS, ATTN, LABELS), soft(maskmix_batch.lam_area))
    # PAL: hard-label mixed CE without smoothing on MaskMix batches, soft-target CE (with smoothing) otherwise
    pal_lam = pal_lambda(maskmix_batch, LOGITS, ATTN, LABELS, 3)
    torch.testing.assert_close(pal.loss(maskmix_batch, LOGITS, ATTN, LABELS),
                               mixed_cross_entropy(LOGITS, LABELS, torch.tensor([1, 0]), pal_lam))
    torch.testing.assert_close(PALLabels(3, keep_smoothing=True).loss(maskmix_batch, LOGITS, ATTN, LABELS),
                               mixed_cross_entropy(LOGITS, LABELS, torch.tensor([1, 0]), pal_lam, 0.1))
    torch.testing.assert_close(pal.loss(cutmix_batch, LOGITS, ATTN, LABELS), soft(cutmix_batch.lam_area))
    # α's gradient reaches the logits unless detached
    logits = LOGITS.clone().requires_grad_(True)
    g_full, = torch.autograd.grad(pal.loss(maskmix_batch, logits, ATTN, LABELS), logits)
    g_det, = torch.autograd.grad(PALLabels(3, detach_factor=True).loss(maskmix_batch, logits, ATTN, LABELS), logits)
    assert not torch.allclose(g_full, g_det)
    with pytest.raises(ValueError, match="num_classes"):
        PALLabels(1)

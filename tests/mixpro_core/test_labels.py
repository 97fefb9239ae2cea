"""Pins the label-space semantics of docs/methods.md ("Attention for labelling", "TransMix", "PAL") against
hand-computed small cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixpro_core import (LABEL_POLICIES, POLICY_STATS, AreaLabels, LabelPolicy, MixBatch, PALLabels, Registry, TransMixLabels,
                         area_lambda, attention_lambda, build_label_policy, cls_attention_from_qkv, mixed_cross_entropy,
                         mixed_targets, pal_lambda, progressive_factor, smooth_one_hot, soft_target_cross_entropy,
                         transmix_lambda)


def make_batch(lam_area, token_mask=None, token_exact=False, kind="any-mixer"):
    """A batch as a mixer would declare it: the policies read token_mask / token_exact, never the kind."""
    lam_area = torch.tensor(lam_area)
    b = len(lam_area)
    return MixBatch(images=torch.zeros(b, 1, 2, 2), partner=torch.tensor([1, 0]), lam_area=lam_area,
                    pixel_mask=None, token_mask=None if token_mask is None else torch.tensor(token_mask), kind=kind,
                    token_exact=token_exact)


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


def test_transmix_lambda_on_batches_with_a_token_mask_only():
    cut = make_batch([0.75, 0.25], MASK, kind="cutmix")
    expected = torch.tensor([(0.75 + 0.4) / 2, (0.25 + 0.6) / 2])
    torch.testing.assert_close(transmix_lambda(cut, ATTN), expected)
    # a mixer the policy has never heard of gets the same treatment when it declares a token mask
    torch.testing.assert_close(transmix_lambda(make_batch([0.75, 0.25], MASK, kind="brand-new"), ATTN), expected)
    for kind in ("mixup", "rmix", "none"):  # no token mask: area λ
        torch.testing.assert_close(transmix_lambda(make_batch([0.75, 0.25], kind=kind), ATTN),
                                   torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(transmix_lambda(cut, None), cut.lam_area)
    torch.testing.assert_close(area_lambda(cut), cut.lam_area)


def test_pal_lambda_by_hand_and_gradient_switch():
    batch = make_batch([0.75, 0.25], MASK, token_exact=True)
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
    for not_exact in (make_batch([0.75, 0.25]), make_batch([0.75, 0.25], MASK, kind="cutmix")):
        torch.testing.assert_close(pal_lambda(not_exact, LOGITS, ATTN, LABELS, 3), torch.tensor([0.75, 0.25]))
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


def test_library_losses_equal_the_written_out_formulas():
    """soft CE = F.cross_entropy with probabilities; λ·CE(y) + (1−λ)·CE(y[j]) = CE against λ·ŷ + (1−λ)·ŷ[j] per
    sample (CE is linear in the target), with and without smoothing, also for λ with a gradient."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g, dtype=torch.float64)
    labels = torch.randint(10, (64,), generator=g)
    partner = torch.randperm(64, generator=g)
    targets = torch.rand(64, 10, generator=g, dtype=torch.float64).softmax(1)
    written = torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
    torch.testing.assert_close(F.cross_entropy(logits, targets), written, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(soft_target_cross_entropy(logits.float(), targets.float()), written.float())
    lam = torch.rand(64, generator=g, dtype=torch.float64).requires_grad_(True)
    for s in (0.0, 0.1):
        per_sample = (lam * F.cross_entropy(logits, labels, reduction="none", label_smoothing=s)
                      + (1 - lam) * F.cross_entropy(logits, labels[partner], reduction="none", label_smoothing=s))
        soft = F.cross_entropy(logits, mixed_targets(labels, partner, lam, 10, s).double(), reduction="none")
        torch.testing.assert_close(soft, per_sample, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(mixed_cross_entropy(logits.float(), labels, partner, lam.float(), s),
                                   per_sample.mean().float())
        grad_ours, = torch.autograd.grad(mixed_cross_entropy(logits.float(), labels, partner, lam, s), lam)
        grad_ref, = torch.autograd.grad(per_sample.mean(), lam)
        torch.testing.assert_close(grad_ours.double(), grad_ref, rtol=1e-5, atol=1e-7)


def test_policies_implement_each_official_loss():
    maskmix_batch = make_batch([0.75, 0.25], MASK, token_exact=True, kind="maskmix")
    cutmix_batch = make_batch([0.75, 0.25], MASK, kind="cutmix")
    mixup_batch = make_batch([0.75, 0.25], kind="mixup")
    area = AreaLabels(3)
    transmix = TransMixLabels(3)
    pal = PALLabels(3)
    assert not area.needs_attention and transmix.needs_attention and pal.needs_attention

    def soft(lam):
        return soft_target_cross_entropy(LOGITS, mixed_targets(LABELS, torch.tensor([1, 0]), lam, 3, 0.1))

    torch.testing.assert_close(area(cutmix_batch, LOGITS, ATTN, LABELS).loss, soft(cutmix_batch.lam_area))
    torch.testing.assert_close(transmix(cutmix_batch, LOGITS, ATTN, LABELS).loss,
                               soft(transmix_lambda(cutmix_batch, ATTN)))
    torch.testing.assert_close(transmix(mixup_batch, LOGITS, ATTN, LABELS).loss, soft(mixup_batch.lam_area))
    # PAL: hard-label mixed CE without smoothing on MaskMix batches, soft-target CE (with smoothing) otherwise
    pal_lam = pal_lambda(maskmix_batch, LOGITS, ATTN, LABELS, 3)
    torch.testing.assert_close(pal(maskmix_batch, LOGITS, ATTN, LABELS).loss,
                               mixed_cross_entropy(LOGITS, LABELS, torch.tensor([1, 0]), pal_lam))
    torch.testing.assert_close(PALLabels(3, keep_smoothing=True)(maskmix_batch, LOGITS, ATTN, LABELS).loss,
                               mixed_cross_entropy(LOGITS, LABELS, torch.tensor([1, 0]), pal_lam, 0.1))
    torch.testing.assert_close(pal(cutmix_batch, LOGITS, ATTN, LABELS).loss, soft(cutmix_batch.lam_area))
    # α's gradient reaches the logits unless detached
    logits = LOGITS.clone().requires_grad_(True)
    g_full, = torch.autograd.grad(pal(maskmix_batch, logits, ATTN, LABELS).loss, logits)
    g_det, = torch.autograd.grad(PALLabels(3, detach_factor=True)(maskmix_batch, logits, ATTN, LABELS).loss, logits)
    assert not torch.allclose(g_full, g_det)
    with pytest.raises(ValueError, match="num_classes"):
        PALLabels(1)


def test_pal_without_attention_is_exactly_the_area_label_loss():
    """A model without a CLS token (MS-MLP) gets no attention: PAL's loss on MaskMix batches is then the smoothed
    area-label loss, not the unsmoothed hard-label CE."""
    maskmix_batch = make_batch([0.75, 0.25], MASK, token_exact=True, kind="maskmix")
    for policy in (PALLabels(3), PALLabels(3, keep_smoothing=True), TransMixLabels(3)):
        torch.testing.assert_close(policy(maskmix_batch, LOGITS, None, LABELS).loss,
                                   AreaLabels(3)(maskmix_batch, LOGITS, None, LABELS).loss, rtol=0, atol=0)


def test_attention_lambda_is_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    qkv = torch.randn(8, 17, 3 * 64, generator=g)
    mask = (torch.rand(8, 16, generator=g) < 0.5).float()
    reference = attention_lambda(mask, cls_attention_from_qkv(qkv, 4, 0.25))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attn = cls_attention_from_qkv(qkv, 4, 0.25)
        lam = attention_lambda(mask, attn)
    assert attn.dtype == lam.dtype == torch.float32
    torch.testing.assert_close(lam, reference, rtol=0, atol=1e-6)


def test_policy_builder_checks_keys_before_calling():
    assert isinstance(build_label_policy(dict(type="PALLabels", detach_factor=True), 10), PALLabels)
    assert type(build_label_policy(None, 10)) is AreaLabels
    with pytest.raises(ValueError, match=r"label_policy \(PALLabels\): unknown key\(s\) \['detach'\]"):
        build_label_policy(dict(type="PALLabels", detach=True), 10)
    with pytest.raises(ValueError, match="label_policy type must be one of"):
        build_label_policy(dict(type="Nope"), 10)

    registry = Registry("label_policy")

    @registry.register("BuggyLabels")
    class BuggyLabels(LabelPolicy):
        def __init__(self, num_classes, smoothing=0.1, scale=1.0):
            super().__init__(num_classes, smoothing)
            raise TypeError("a genuine bug inside the constructor")

    # the constructor's own TypeError is not reported as an unknown key
    with pytest.raises(TypeError, match="genuine bug"):
        registry.build(dict(type="BuggyLabels", scale=2.0), defaults=dict(num_classes=10))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['scael'\]"):
        registry.build(dict(type="BuggyLabels", scael=2.0), defaults=dict(num_classes=10))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("BuggyLabels")(LabelPolicy)
    assert set(LABEL_POLICIES.names()) >= {"AreaLabels", "TransMixLabels", "PALLabels"}


# ------------------------------------------------------------------------- PAL ablation switches and statistics
def test_pal_ablation_switches_change_one_ingredient_each():
    """lam_source='area' keeps the hard-label CE with λ_area; keep_smoothing keeps PAL's λ with the smoothed CE;
    (area, smoothed) is exactly AreaLabels; non-token-exact batches are untouched by every switch."""
    exact = make_batch([0.5, 0.25], MASK, token_exact=True)
    lam_area, lam_pal = exact.lam_area, pal_lambda(exact, LOGITS, ATTN, LABELS, 3, 0.1)
    assert not torch.allclose(lam_pal, lam_area)

    def ce(lam, s):  # written out: λ·CE(y) + (1−λ)·CE(y_partner) against smoothed one-hots
        logp = LOGITS.log_softmax(1)
        y, yp = smooth_one_hot(LABELS, 3, s), smooth_one_hot(LABELS[exact.partner], 3, s)
        return -(lam[:, None] * y * logp + (1 - lam[:, None]) * yp * logp).sum(1).mean()

    for options, lam, s in [(dict(), lam_pal, 0.0), (dict(keep_smoothing=True), lam_pal, 0.1),
                            (dict(lam_source="area"), lam_area, 0.0),
                            (dict(lam_source="area", keep_smoothing=True), lam_area, 0.1)]:
        result = PALLabels(3, 0.1, **options)(exact, LOGITS, ATTN, LABELS)  # λ and loss from one call
        torch.testing.assert_close(result.lam, lam)
        torch.testing.assert_close(result.loss, ce(lam, s))
    area_smoothed = PALLabels(3, 0.1, lam_source="area", keep_smoothing=True)
    torch.testing.assert_close(area_smoothed(exact, LOGITS, ATTN, LABELS).loss,
                               AreaLabels(3, 0.1)(exact, LOGITS, ATTN, LABELS).loss)
    cut = make_batch([0.5, 0.25], MASK, token_exact=False)  # CutMix: area labels, smoothed, for every variant
    for options in (dict(), dict(lam_source="area"), dict(keep_smoothing=True)):
        torch.testing.assert_close(PALLabels(3, 0.1, **options)(cut, LOGITS, ATTN, LABELS).loss,
                                   AreaLabels(3, 0.1)(cut, LOGITS, ATTN, LABELS).loss)
    with pytest.raises(ValueError, match="lam_source must be one of"):
        PALLabels(3, lam_source="attention")
    assert "lam_source='area'" in repr(PALLabels(3, lam_source="area"))


def test_policy_statistics_by_hand():
    """attn_entropy over the renormalised CLS attention; lam_gap = mean |λ − λ_area| where the policy applies;
    pal_alpha = mean α; detached scalars, absent where the quantity does not exist."""
    p = ATTN / ATTN.sum(1, keepdim=True)
    entropy = -(p * p.log()).sum(1).mean()
    exact = make_batch([0.5, 0.25], MASK, token_exact=True)
    cut = make_batch([0.5, 0.25], MASK, token_exact=False)
    mix = make_batch([0.5, 0.25])  # Mixup: no token mask
    logits = LOGITS.clone().requires_grad_(True)

    result = PALLabels(3, 0.1)(exact, logits, ATTN, LABELS)  # loss, λ and statistics from one call
    pal = result.stats
    area_targets = mixed_targets(LABELS, exact.partner, exact.lam_area, 3, 0.1)
    alpha = F.cosine_similarity(LOGITS.softmax(1), area_targets, dim=1)
    lam = alpha * attention_lambda(exact.token_mask, ATTN) + (1 - alpha) * exact.lam_area
    assert set(pal) == {"attn_entropy", "lam_gap", "pal_alpha"}
    torch.testing.assert_close(pal["attn_entropy"], entropy)
    torch.testing.assert_close(pal["pal_alpha"], alpha.mean())
    torch.testing.assert_close(pal["lam_gap"], (lam - exact.lam_area).abs().mean())
    assert all(v.dim() == 0 and not v.requires_grad for v in pal.values())
    torch.testing.assert_close(pal["lam_gap"], (result.lam - exact.lam_area).abs().mean().detach())  # the λ it used
    assert set(PALLabels(3)(cut, LOGITS, ATTN, LABELS).stats) == {"attn_entropy"}  # PAL does not apply to CutMix
    area_variant = PALLabels(3, 0.1, lam_source="area")(exact, LOGITS, ATTN, LABELS).stats
    assert set(area_variant) == {"attn_entropy", "pal_alpha", "pal_lam_gap"}  # its own gap is 0 by definition
    torch.testing.assert_close(area_variant["pal_lam_gap"], pal["lam_gap"])
    assert set(pal) | set(area_variant) == set(POLICY_STATS)  # the declared keys: what hooks and reports show

    transmix = TransMixLabels(3)(cut, LOGITS, ATTN, LABELS).stats
    torch.testing.assert_close(transmix["lam_gap"], (transmix_lambda(cut, ATTN) - cut.lam_area).abs().mean())
    assert set(TransMixLabels(3)(mix, LOGITS, ATTN, LABELS).stats) == {"attn_entropy"}
    assert PALLabels(3)(exact, LOGITS, None, LABELS).stats == {}
    assert AreaLabels(3)(exact, LOGITS, ATTN, LABELS).stats == {}
    uniform = torch.full((2, 16), 0.3)
    torch.testing.assert_close(TransMixLabels(3)(mix, LOGITS, uniform, LABELS).stats["attn_entropy"],
                               torch.tensor(16.0).log())

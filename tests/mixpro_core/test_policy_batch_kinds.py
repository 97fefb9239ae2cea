"""Which batches each label policy changes, on batches made by the real mixers (docs/methods.md, "TransMix", "PAL"):

- PAL applies its attention λ to token-exact batches only (MaskMix; ResizeMix with ``align=True``); CutMix, Mixup and
  unaligned ResizeMix batches get the area λ and the smoothed soft-target loss.
- TransMix applies (λ_area + λ_attn)/2 to every batch with a token mask (CutMix, ResizeMix, MaskMix); Mixup keeps
  the area λ.

The attention is peaked (a softmax of scaled noise, seeded), so λ_attn is far from λ_area and a policy applied to the
wrong kind of batch changes λ by more than the asserted margin."""
import pytest
import torch

from mixpro_core import (AreaLabels, PALLabels, TransMixLabels, attention_lambda, cutmix, maskmix, mixed_targets, mixup,
                         resizemix, soft_target_cross_entropy)

B, K, SIZE, PATCH = 6, 5, 32, 8
N = (SIZE // PATCH) ** 2


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


X = torch.randn(B, 3, SIZE, SIZE, generator=gen(0))
LABELS = torch.tensor([0, 1, 2, 3, 4, 0])
LOGITS = torch.randn(B, K, generator=gen(1))
ATTN = (6 * torch.randn(B, N, generator=gen(2))).softmax(1)  # peaked: a few tokens hold most of the mass


def batches(seed):
    return dict(maskmix=maskmix(X, mask_size=8, patch_size=PATCH, generator=gen(seed)),
                cutmix=cutmix(X, patch_size=PATCH, generator=gen(seed)),
                mixup=mixup(X, generator=gen(seed)),
                resizemix=resizemix(X, scale=(0.4, 0.7), patch_size=PATCH, generator=gen(seed)),
                resizemix_aligned=resizemix(X, scale=(0.4, 0.7), patch_size=PATCH, align=True, generator=gen(seed)))


def area_loss(batch):
    return soft_target_cross_entropy(LOGITS, mixed_targets(LABELS, batch.partner, batch.lam_area, K, 0.1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pal_changes_token_exact_batches_only(seed):
    pal = PALLabels(K)
    for kind, batch in batches(seed).items():
        lam = pal(batch, LOGITS, ATTN, LABELS).lam
        if kind in ("maskmix", "resizemix_aligned"):
            assert batch.token_exact
            gap = (attention_lambda(batch.token_mask, ATTN) - batch.lam_area).abs().max()
            assert gap > 0.1, f"{kind}: the attention does not separate the policies (gap {gap:.3f})"
            assert (lam - batch.lam_area).abs().max() > 0.05, kind
            assert not torch.allclose(pal(batch, LOGITS, ATTN, LABELS).loss, area_loss(batch), atol=1e-3), kind
        else:
            assert not batch.token_exact
            assert torch.equal(lam, batch.lam_area), kind
            torch.testing.assert_close(pal(batch, LOGITS, ATTN, LABELS).loss, area_loss(batch), rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transmix_changes_every_batch_with_a_token_mask(seed):
    transmix = TransMixLabels(K)
    separated = 0
    for kind, batch in batches(seed).items():
        lam = transmix(batch, LOGITS, ATTN, LABELS).lam
        if kind == "mixup":
            assert batch.token_mask is None and torch.equal(lam, batch.lam_area)
            torch.testing.assert_close(transmix(batch, LOGITS, ATTN, LABELS).loss, area_loss(batch), rtol=0, atol=0)
            continue
        lam_attn = attention_lambda(batch.token_mask, ATTN)
        torch.testing.assert_close(lam, (batch.lam_area + lam_attn) / 2)
        if (lam_attn - batch.lam_area).abs().max() > 0.1:  # a CutMix box can be empty: nothing to tell apart
            assert (lam - batch.lam_area).abs().max() > 0.05, kind
            separated += 1
    assert separated >= 3, "the attention must separate the policies on most token-mask batches"


def test_area_labels_ignore_the_attention_on_every_kind():
    area = AreaLabels(K)
    for batch in batches(0).values():
        torch.testing.assert_close(area(batch, LOGITS, ATTN, LABELS).loss, area_loss(batch), rtol=0, atol=0)
        assert torch.equal(area(batch, LOGITS, ATTN, LABELS).lam, batch.lam_area)

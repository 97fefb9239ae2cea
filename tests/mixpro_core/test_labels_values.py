"""Soft targets by hand (mixpro_core/labels.py): the defaults of the public helpers and where ``lam`` may come from,
edges found by ``make mutate MODULES=mixpro_core/labels.py``."""
import pytest
import torch

from mixpro_core import mixed_targets, smooth_one_hot


def test_smooth_one_hot_defaults_to_smoothing_0_1():
    labels = torch.tensor([2, 0])
    expected = torch.tensor([[0.025, 0.025, 0.925, 0.025], [0.925, 0.025, 0.025, 0.025]])
    torch.testing.assert_close(smooth_one_hot(labels, 4), expected)


@pytest.mark.parametrize("lam", [0.7, torch.tensor(0.7), torch.tensor([0.7, 0.7], dtype=torch.float64)])
def test_mixed_targets_default_smoothing_and_lam_forms(lam):
    labels, partner = torch.tensor([2, 0]), torch.tensor([1, 0])
    y = torch.full((2, 4), 0.025)
    y[0, 2] = y[1, 0] = 0.925
    expected = 0.7 * y + 0.3 * y[partner]  # hand: the partner of sample 0 is sample 1 (class 0)
    out = mixed_targets(labels, partner, lam, 4)
    assert out.dtype == torch.float32  # a float64 lam does not turn the targets into float64
    torch.testing.assert_close(out, expected)
    assert out[0].tolist() == pytest.approx([0.7 * 0.025 + 0.3 * 0.925, 0.025, 0.7 * 0.925 + 0.3 * 0.025, 0.025])


@pytest.mark.gpu
def test_mixed_targets_of_cuda_labels_with_a_cpu_lam():
    labels, partner, lam = torch.tensor([2, 0]), torch.tensor([1, 0]), torch.tensor([0.7, 0.4])
    cpu = mixed_targets(labels, partner, lam, 4)
    gpu = mixed_targets(labels.cuda(), partner.cuda(), lam, 4)
    assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu)

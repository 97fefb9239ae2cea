"""MaskMix masks at chosen cell counts (``own_cells``, what the grid pictures use) and their checks, by hand — edges
found by ``make mutate MODULES=mixpro_core/mixing.py``."""
import pytest
import torch

from mixpro_core import maskmix_masks


def test_own_cells_sets_each_samples_count_of_own_cells():
    own = torch.tensor([0, 1, 5, 6])
    pixel, token = maskmix_masks(4, 48, 32, mask_size=16, patch_size=8, own_cells=own,
                                 generator=torch.Generator().manual_seed(0))
    assert pixel.device.type == "cpu" and pixel.shape == (4, 1, 48, 32) and token.shape == (4, 24)
    cells = pixel[:, 0, ::16, ::16].flatten(1)  # one pixel per 16×16 cell: a 3×2 grid
    assert cells.sum(1).tolist() == [0, 1, 5, 6]
    # every 16-px cell is whole, and the token mask is the same cells at the 8-px token grid (2×2 tokens a cell)
    assert torch.equal(pixel, cells.view(4, 1, 3, 2).repeat_interleave(16, 2).repeat_interleave(16, 3))
    assert torch.equal(token, cells.view(4, 1, 3, 2).repeat_interleave(2, 2).repeat_interleave(2, 3).flatten(1))


@pytest.mark.parametrize("own", [torch.tensor([1, 2, 3]), torch.tensor([[1], [2]]), torch.tensor([-1, 2]),
                                 torch.tensor([7, 0])])
def test_own_cells_outside_the_grid_or_of_another_shape_are_refused(own):
    with pytest.raises(ValueError, match=r"own_cells must be \(2,\) counts in 0\.\.6, got"):
        maskmix_masks(2, 48, 32, mask_size=16, patch_size=8, own_cells=own)


@pytest.mark.parametrize("size", [(48, 36), (36, 48)])
def test_one_side_that_is_not_whole_tokens_is_refused(size):
    with pytest.raises(ValueError, match=rf"image size {size[0]}x{size[1]} is not a multiple of patch_size=8"):
        maskmix_masks(2, *size, mask_size=16, patch_size=8)


@pytest.mark.parametrize("mask_size,patch_size", [(0, 8), (16, 0), (-16, 8), (16, -8)])
def test_sizes_that_are_not_positive_are_refused(mask_size, patch_size):
    with pytest.raises(ValueError, match=rf"mask_size and patch_size must be positive, got mask_size={mask_size}, "
                                         rf"patch_size={patch_size}"):
        maskmix_masks(2, 32, 32, mask_size=mask_size, patch_size=patch_size)

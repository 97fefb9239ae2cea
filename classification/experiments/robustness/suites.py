"""The robustness suites' building blocks (what they measure: :mod:`classification.experiments.robustness.evaluate`):
the suite names and defaults, the normalisation moved into the model, occlusion and patch shuffling in pixel space,
and the ImageNet-A / R / O class subsets and out-of-distribution score.
"""
from __future__ import annotations

import math
import os
import os.path as osp
from fractions import Fraction
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torchvision import transforms as T

from classification.foundation.errors import MissingPathError, UserError

__all__ = [
    "SUITES", "TEST_SET_SUITES", "IMAGENET_SUITES", "DEFAULT_SHUFFLE_GRIDS", "DEFAULT_OCCLUSION_RATIOS",
    "DEFAULT_EPSILONS", "NormalizedModel", "split_normalize", "num_patches_to_drop", "patch_grid", "drop_patches",
    "shuffle_patches", "default_occlusion_patch_size", "default_shuffle_grids", "imagenet_wnids",
    "class_subset_indices", "restrict_logits", "folder_wnids", "max_softmax", "ood_aupr",
]

TEST_SET_SUITES = ("occlusion", "shuffle", "fgsm", "pgd")
IMAGENET_SUITES = ("imagenet-a", "imagenet-r", "imagenet-o")
SUITES = TEST_SET_SUITES + IMAGENET_SUITES
DEFAULT_SHUFFLE_GRIDS = (2, 4, 8, 14, 16)
DEFAULT_OCCLUSION_RATIOS = tuple(k / 10 for k in range(10))
DEFAULT_EPSILONS = (1 / 255, 2 / 255, 4 / 255)
IMAGENET_OCCLUSION_SIZE, IMAGENET_OCCLUSION_PATCH = 224, 16  # a 14×14 grid of 16-px patches at 224 px


# ------------------------------------------------------------------------------------------------- normalisation
class NormalizedModel(nn.Module):
    """``model((x - mean) / std)`` for x in [0, 1] pixel space: the normalisation of the data pipeline, moved into
    the model so that perturbations live in pixel space and gradients flow through it. mean/std: per channel."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean {tuple(mean)} and std {tuple(std)} have different lengths")
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B,C,H,W) in [0, 1] → logits (B,K)."""
        return self.model((images - self.mean) / self.std)


def split_normalize(transform: Optional[Callable]) -> Tuple[Optional[Callable], Tuple[float, ...], Tuple[float, ...]]:
    """``(transform without its Normalize, mean, std)``.

    ``transform`` is None (images already in [0, 1]: identity normalisation, mean 0 / std 1), a ``Normalize``, or a
    torchvision ``Compose`` holding at most one top-level ``Normalize`` (timm's eval transform: resize, centre crop,
    to-tensor, normalise with the config's mean/std or ImageNet's; our ``fashion_mnist`` transform: to-tensor,
    normalise with the Fashion-MNIST constants). Any other callable: ValueError (its normalisation cannot be moved).
    """
    if transform is None:
        return None, (0.0,), (1.0,)
    if isinstance(transform, T.Normalize):
        return None, _floats(transform.mean), _floats(transform.std)
    if not isinstance(transform, T.Compose):
        raise ValueError(f"cannot take the normalisation out of transform {transform!r}: expected a torchvision "
                         f"Compose (timm / fashion_mnist transforms are) or None")
    norms = [t for t in transform.transforms if isinstance(t, T.Normalize)]
    if len(norms) > 1:
        raise ValueError(f"transform {transform!r} normalises {len(norms)} times; expected at most once")
    if any(isinstance(t, T.Compose) for t in transform.transforms):
        raise ValueError(f"transform {transform!r} nests a Compose; cannot locate its normalisation")
    rest = T.Compose([t for t in transform.transforms if not isinstance(t, T.Normalize)])
    if not norms:
        return rest, (0.0,), (1.0,)
    return rest, _floats(norms[0].mean), _floats(norms[0].std)


def _floats(values) -> Tuple[float, ...]:
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    elif isinstance(values, (int, float)):
        values = [values]
    return tuple(float(v) for v in values)


# ----------------------------------------------------------------------------------------------------- occlusion
def num_patches_to_drop(num_patches: int, ratio: float) -> int:
    """``floor(ratio · num_patches)`` computed exactly for decimal ratios (ratio k/10 → ``k·G//10``)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"drop ratio must be in [0, 1], got {ratio}")
    return math.floor(Fraction(str(float(ratio))) * num_patches)


def patch_grid(size: Tuple[int, int], patch_size: int) -> Tuple[int, int]:
    h, w = size
    if patch_size <= 0 or h % patch_size or w % patch_size:
        raise ValueError(f"patch size {patch_size} does not divide the {h}x{w} input into whole patches")
    return h // patch_size, w // patch_size


def drop_patches(images: torch.Tensor, patch_size: int, num_drop: int,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Zero ``num_drop`` random square patches of side ``patch_size`` — the same patches in every image.

    images (B,C,H,W) in pixel space, H and W multiples of ``patch_size``; the patch set is one ``randperm`` draw of
    ``generator`` (a CPU generator). Returns a new tensor.
    """
    gh, gw = patch_grid(images.shape[-2:], patch_size)
    if not 0 <= num_drop <= gh * gw:
        raise ValueError(f"num_drop={num_drop} outside 0..{gh * gw} (a {gh}x{gw} grid of {patch_size}-px patches)")
    keep = torch.ones(gh * gw, dtype=images.dtype)
    keep[torch.randperm(gh * gw, generator=generator)[:num_drop]] = 0
    mask = keep.view(gh, gw).repeat_interleave(patch_size, 0).repeat_interleave(patch_size, 1)
    return images * mask.to(images.device)


def shuffle_patches(images: torch.Tensor, grid: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Cut images (B,C,H,W) into a ``grid``×``grid`` array of cells and permute the cells with one random
    permutation (``generator``, CPU), the same for every image. H and W must be multiples of ``grid``."""
    b, c, h, w = images.shape
    if grid <= 0 or h % grid or w % grid:
        raise ValueError(f"a {grid}x{grid} grid does not divide the {h}x{w} input into whole cells")
    ph, pw = h // grid, w // grid
    cells = images.reshape(b, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, c, ph, pw)
    perm = torch.randperm(grid * grid, generator=generator).to(images.device)
    cells = cells[:, perm]
    return cells.reshape(b, grid, grid, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def default_occlusion_patch_size(input_size: int, token_stride: Optional[int]) -> int:
    """16 px at 224 (a 14×14 grid), otherwise the model's token stride (one patch = one token)."""
    if input_size == IMAGENET_OCCLUSION_SIZE:
        return IMAGENET_OCCLUSION_PATCH
    if not token_stride:
        raise ValueError(f"input size {input_size}: the model has no token_stride to size occlusion patches with; "
                         f"pass occlusion_patch_size")
    if input_size % token_stride:
        raise ValueError(f"the model's token stride {token_stride} does not divide the input size {input_size}; "
                         f"pass occlusion_patch_size")
    return int(token_stride)


def default_shuffle_grids(input_size: int) -> Tuple[int, ...]:
    """(2,4,8,14,16) where they divide the side; below 64 px every divisor 2 ≤ g ≤ side/2 (28 → 2, 4, 7, 14)."""
    if input_size < 64:
        grids = tuple(g for g in range(2, input_size // 2 + 1) if input_size % g == 0)
    else:
        grids = tuple(g for g in DEFAULT_SHUFFLE_GRIDS if input_size % g == 0)
    if not grids:
        raise ValueError(f"no shuffle grid divides the input size {input_size}; pass shuffle_grids")
    return grids


# --------------------------------------------------------------------------------------------- ImageNet-A / R / O
def imagenet_wnids() -> List[str]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (timm's bundled ``imagenet_synsets.txt``)."""
    from timm.data import ImageNetInfo
    return list(ImageNetInfo("imagenet-1k").label_names())


def class_subset_indices(folder_wnids: Sequence[str], imagenet_wnids: Sequence[str]) -> torch.Tensor:
    """LongTensor (len(folder_wnids),): the ImageNet class index of each folder's WordNet id, in folder order.
    ValueError naming the folder whose name is not one of ``imagenet_wnids``."""
    position = {w: i for i, w in enumerate(imagenet_wnids)}
    unknown = [w for w in folder_wnids if w not in position]
    if unknown:
        raise UserError(f"class folder {unknown[0]!r} is not an ImageNet-1k WordNet id "
                         f"({len(unknown)} unknown folder(s) in all)")
    return torch.tensor([position[w] for w in folder_wnids], dtype=torch.long)


def restrict_logits(logits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """(B,1000) logits → (B,len(indices)): column j is class ``indices[j]`` (argmax j ↔ folder label j)."""
    return logits.index_select(1, indices.to(logits.device))


def folder_wnids(path: str) -> List[str]:
    """Sorted class-folder names of a dataset folder (ImageFolder's label order); FileNotFoundError naming it."""
    if not osp.isdir(path):
        raise MissingPathError(f"dataset folder {path} does not exist")
    names = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if not names:
        raise UserError(f"dataset folder {path} holds no class folder")
    return names


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(B,K) → (B,) maximum softmax probability (the classifier's confidence)."""
    return logits.float().softmax(dim=1).max(dim=1).values


def ood_aupr(in_confidence, out_confidence) -> float:
    """AUPR in percent of detecting out-of-distribution samples (the positives) with score ``-confidence``.

    ``in_confidence``: max softmax of in-distribution samples (ImageNet val); ``out_confidence``: of the anomalies
    (ImageNet-O). Computed with ``sklearn.metrics.average_precision_score``; a model that is more confident on
    in-distribution images than on anomalies scores higher (chance level: the fraction of anomalies)."""
    import numpy as np
    from sklearn.metrics import average_precision_score
    in_conf = np.asarray(torch.as_tensor(in_confidence, dtype=torch.float64).flatten())
    out_conf = np.asarray(torch.as_tensor(out_confidence, dtype=torch.float64).flatten())
    if not len(in_conf) or not len(out_conf):
        raise ValueError("AUPR needs at least one in-distribution and one out-of-distribution sample")
    is_anomaly = np.concatenate([np.zeros(len(in_conf)), np.ones(len(out_conf))])
    return float(100 * average_precision_score(is_anomaly, -np.concatenate([in_conf, out_conf])))

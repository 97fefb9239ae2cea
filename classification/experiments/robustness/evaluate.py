"""Robustness benchmarks of a classifier checkpoint, in [0, 1] pixel space (docs/methods.md, "Robustness benchmarks").

:func:`evaluate_robustness` (one config + checkpoint → its entry of ``robustness.json``; ``tools/robustness.py`` is
the command line) returns ``clean_top1`` and, for each suite run, top-1 in percent per setting: ``occlusion``
``{"0.0": top1, ..., "0.9": top1}`` by drop ratio (with several patch sizes also ``occlusion_by_patch``
``{"4": {...}, "8": {...}}``), ``shuffle`` ``{"2x2": top1, ...}``, ``fgsm`` / ``pgd`` ``{"1/255": top1, ...}``,
``imagenet-a`` / ``imagenet-r`` top-1; ``imagenet-o`` is an AUPR in percent. The test set is built without its
``Normalize`` step, which moves into the model (:class:`~classification.experiments.robustness.suites.NormalizedModel`).
Each setting draws from its own generator seeded from ``(seed, setting)``, so a result does not depend on which other
settings run; the test set is read once per checkpoint.
"""
from __future__ import annotations

import os.path as osp
import sys
import zlib
from contextlib import nullcontext
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from tqdm import tqdm

from classification.engine.config_check import load_config
from classification.foundation.errors import MissingPathError, UserError
from classification.models.pretrained import load_classifier
from classification.experiments.robustness.attacks import fgsm, pgd
from classification.experiments.robustness.suites import (DEFAULT_EPSILONS, DEFAULT_OCCLUSION_RATIOS, IMAGENET_SUITES,
                                                          NormalizedModel, SUITES, TEST_SET_SUITES,
                                                          class_subset_indices, default_occlusion_patch_size,
                                                          default_shuffle_grids, drop_patches, folder_wnids,
                                                          imagenet_wnids, max_softmax, num_patches_to_drop, ood_aupr,
                                                          patch_grid, restrict_logits, shuffle_patches, split_normalize)
from mixpro_core import token_stride as stride_of

__all__ = ["evaluate_robustness", "ratio_key", "grid_key", "eps_key"]


def _test_dataset_cfg(cfg) -> dict:
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if not loader or "dataset" not in loader:
        raise UserError("the config has no test_dataloader (or val_dataloader) dataset")
    return loader


def _build_pixel_dataset(dataset_cfg: dict):
    """The dataset with its transform's normalisation removed → (dataset, mean, std). A uint8 timm transform (whose
    normalisation runs in the model's data preprocessor) is built as its float twin first."""
    from mmengine.registry import DATASETS
    from classification.data.transforms import resolve_transform
    dataset_cfg = dict(dataset_cfg)
    if isinstance(dataset_cfg.get("transform"), dict) and dataset_cfg["transform"].get("uint8"):
        dataset_cfg["transform"] = dict(dataset_cfg["transform"], uint8=False)
    pixel_transform, mean, std = split_normalize(resolve_transform(dataset_cfg.get("transform")))
    dataset_cfg["transform"] = pixel_transform
    return DATASETS.build(dataset_cfg), mean, std


def _folder_dataset(path: str, transform: Optional[Callable]) -> Tuple[Dataset, List[str]]:
    """A WordNet-id class-folder dataset at ``path`` (ImageNet-A/R/O layout) → (dataset, sorted wnids)."""
    from classification.data.imagenet import ImageNetFolder
    path = osp.normpath(path)
    names = folder_wnids(path)
    return ImageNetFolder(osp.dirname(path) or ".", osp.basename(path), transform=transform), names


def _limit(dataset: Dataset, max_samples: Optional[int]) -> Dataset:
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples <= 0:
        raise ValueError(f"max_samples must be positive, got {max_samples}")
    return Subset(dataset, range(max_samples))


# ---------------------------------------------------------------------------------------------------- evaluation
def ratio_key(ratio: float) -> str:
    return str(float(ratio))


def grid_key(grid: int) -> str:
    return f"{grid}x{grid}"


def eps_key(eps: float) -> str:
    return f"{eps * 255:g}/255"


def _generator(seed: int, tag: str) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(tag.encode())) % (2 ** 63))


def _progress(iterable, total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr over ``iterable`` (removed when done), or the iterable itself when not ``enabled``."""
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=not enabled)


class _Counter:
    def __init__(self):
        self.correct, self.total = 0, 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += int((logits.argmax(dim=1) == labels).sum())
        self.total += len(labels)

    @property
    def top1(self) -> float:
        return 100.0 * self.correct / max(self.total, 1)


def _loader(dataset: Dataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=default_collate, pin_memory=device.type == "cuda")


def _batch(data: dict, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    return (data["inputs"].to(device, non_blocking=True).float(),
            torch.as_tensor(data["data_samples"]).to(device, non_blocking=True).long())


def _patch_sizes(occlusion_patch_size: Union[None, int, Sequence[int]]) -> Tuple[int, ...]:
    """None → (); one size → (size,); several → their distinct values in order."""
    if occlusion_patch_size is None:
        return ()
    sizes = (occlusion_patch_size,) if isinstance(occlusion_patch_size, int) else tuple(occlusion_patch_size)
    if not sizes or any(not isinstance(p, int) or p <= 0 for p in sizes):
        raise ValueError(f"occlusion patch sizes must be positive integers, got {occlusion_patch_size!r}")
    return tuple(dict.fromkeys(sizes))


def _plan(size: Tuple[int, int], suites: Sequence[str], occlusion_ratios: Sequence[float],
          occlusion_patch_size: Union[None, int, Sequence[int]], shuffle_grids: Optional[Sequence[int]],
          token_stride: Optional[int]) -> dict:
    """For inputs of ``size``: the occlusion patch sizes (``patches``, the first is the one reported as
    ``occlusion``) with their ``(key, num_drop)`` lists (``occlusion``: patch → list), and the shuffle grids."""
    h, w = size
    plan: dict = {"size": (h, w)}
    sizes = _patch_sizes(occlusion_patch_size)
    if (not sizes and "occlusion" in suites or shuffle_grids is None and "shuffle" in suites) and h != w:
        raise ValueError(f"{h}x{w} inputs: pass occlusion_patch_size / shuffle_grids explicitly")
    if "occlusion" in suites:
        sizes = sizes or (default_occlusion_patch_size(h, token_stride),)
        plan["patches"] = sizes
        plan["occlusion"] = {}
        for patch in sizes:
            gh, gw = patch_grid((h, w), patch)
            plan["occlusion"][patch] = [(ratio_key(r), num_patches_to_drop(gh * gw, r)) for r in occlusion_ratios]
    if "shuffle" in suites:
        plan["shuffle"] = tuple(shuffle_grids or default_shuffle_grids(h))
    return plan


def _evaluate_test_set(model: NormalizedModel, loader: DataLoader, suites: Sequence[str], *, seed: int,
                       occlusion_ratios: Sequence[float], occlusion_patch_size: Union[None, int, Sequence[int]],
                       shuffle_grids: Optional[Sequence[int]], epsilons: Sequence[float], pgd_steps: int,
                       device: torch.device, autocast, token_stride: Optional[int], progress: bool,
                       desc: str, attack_max_samples: Optional[int] = None) -> dict:
    """One pass over the loader; every setting of every suite runs on each batch (the attacks on the first
    ``attack_max_samples`` samples only, when given)."""
    counters: Dict[Tuple[str, str], _Counter] = {("clean", ""): _Counter()}
    generators: Dict[Tuple[str, str], torch.Generator] = {}
    plan: dict = {}
    attacked = 0

    def count(suite: str, key: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
        counters.setdefault((suite, key), _Counter()).add(logits, labels)

    def gen(suite: str, key: str) -> torch.Generator:
        if (suite, key) not in generators:
            generators[(suite, key)] = _generator(seed, f"{suite}:{key}")
        return generators[(suite, key)]

    for data in _progress(loader, len(loader), desc, progress):
        images, labels = _batch(data, device)
        if not plan:  # geometry from the first batch
            plan.update(_plan(images.shape[-2:], suites, occlusion_ratios, occlusion_patch_size, shuffle_grids,
                              token_stride))
        with torch.no_grad():
            with autocast():
                count("clean", "", model(images), labels)
                for i, patch in enumerate(plan.get("patches", ())):
                    suite = "occlusion" if i == 0 else f"occlusion@{patch}"  # the first keeps its random stream
                    for key, num_drop in plan["occlusion"][patch]:
                        count(suite, key, model(drop_patches(images, patch, num_drop, gen(suite, key))), labels)
                for grid in plan.get("shuffle", ()):
                    key = grid_key(grid)
                    count("shuffle", key, model(shuffle_patches(images, grid, gen("shuffle", key))), labels)
            if attack_max_samples is not None:
                room = max(attack_max_samples - attacked, 0)
                images, labels = images[:room], labels[:room]
                attacked += len(labels)
            if not len(labels):
                continue
            for eps in epsilons if "fgsm" in suites else ():
                adv = fgsm(model, images, labels, eps)
                count("fgsm", eps_key(eps), model(adv), labels)
            for eps in epsilons if "pgd" in suites else ():
                adv = pgd(model, images, labels, eps, steps=pgd_steps, generator=gen("pgd", eps_key(eps)))
                count("pgd", eps_key(eps), model(adv), labels)

    result: dict = {"clean_top1": counters[("clean", "")].top1}
    for suite in TEST_SET_SUITES:
        if suite in suites:
            result[suite] = {key: c.top1 for (s, key), c in counters.items() if s == suite}
    patches = plan.get("patches", ())
    if len(patches) > 1:
        result["occlusion_by_patch"] = {
            str(p): result["occlusion"] if i == 0 else
            {key: c.top1 for (s, key), c in counters.items() if s == f"occlusion@{p}"}
            for i, p in enumerate(patches)}
    return result


def _collect_logits(model: nn.Module, loader: DataLoader, device: torch.device, autocast, progress: bool,
                    desc: str) -> Tuple[torch.Tensor, torch.Tensor]:
    logits, labels = [], []
    with torch.no_grad():
        for data in _progress(loader, len(loader), desc, progress):
            images, target = _batch(data, device)
            with autocast():
                logits.append(model(images).float().cpu())
            labels.append(target.cpu())
    return torch.cat(logits), torch.cat(labels)


def _resolve_device(device: Optional[str], amp: bool) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device} requested but CUDA is not available")
    if amp and device.type != "cuda":
        raise UserError("amp (bf16 autocast) needs a CUDA device; run without it on the CPU")
    return device


def _check_arguments(suites: Sequence[str], max_samples: Optional[int], attack_max_samples: Optional[int]) -> None:
    """UserError for a sample limit that is not positive or a suite that does not exist."""
    for arg, value in (("max_samples", max_samples), ("attack_max_samples", attack_max_samples)):
        if value is not None and value <= 0:
            raise UserError(f"{arg} must be positive, got {value}")
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise UserError(f"unknown suite(s) {unknown}; choose from {list(SUITES)}")


def _imagenet_subsets(cfg, suites: Sequence[str], folders: Dict[str, Optional[str]],
                      imagenet_val: Optional[str]) -> Dict[str, torch.Tensor]:
    """For each ImageNet-A/R/O suite asked for: the indices of its folder's classes among ImageNet's 1000. Every check
    before any work: UserError for a suite without its folder, a folder (``imagenet_val`` too) that is not there or
    holds no class folder, a class folder that is not an ImageNet WordNet id, a model without 1000 classes."""
    wanted = [s for s in IMAGENET_SUITES if s in suites]
    subset_indices = {}
    if wanted:
        all_wnids = imagenet_wnids()
        for suite in wanted:
            if not folders[suite]:
                raise UserError(f"suite {suite} needs its dataset folder ({suite.replace('-', '_')}=...)")
            subset_indices[suite] = class_subset_indices(folder_wnids(folders[suite]), all_wnids)
        if imagenet_val and "imagenet-o" in wanted:
            folder_wnids(imagenet_val)
        num_classes = cfg.model.get("num_classes")
        if num_classes != 1000:
            raise UserError(f"{wanted} need a 1000-class ImageNet model; the config's model has {num_classes}")
    return subset_indices


def _imagenet_suites(logits_of: Callable[[Dataset, str], Tuple[torch.Tensor, torch.Tensor]],
                     folders: Dict[str, Optional[str]], subset_indices: Dict[str, torch.Tensor], test_set: Dataset,
                     imagenet_val: Optional[str]) -> dict:
    """The ImageNet suites of ``subset_indices`` (:func:`_imagenet_subsets`): ImageNet-A / -R top-1 (%) over the
    logits of their classes, ImageNet-O's AUPR (%) against ``imagenet_val`` (default: ``test_set``), the folders read
    with the test set's transform; ``logits_of(dataset, name)`` → (logits (N,1000), labels (N,))."""
    transform = getattr(test_set, "transform", None)
    entry = {}
    for suite in ("imagenet-a", "imagenet-r"):
        if suite in subset_indices:
            dataset, _ = _folder_dataset(folders[suite], transform)
            logits, labels = logits_of(dataset, suite)
            predicted = restrict_logits(logits, subset_indices[suite]).argmax(1)
            entry[suite] = 100.0 * float((predicted == labels).double().mean())
    if "imagenet-o" in subset_indices:
        out_set, _ = _folder_dataset(folders["imagenet-o"], transform)
        in_set = test_set if not imagenet_val else _folder_dataset(imagenet_val, transform)[0]
        out_logits, _ = logits_of(out_set, "imagenet-o")
        in_logits, _ = logits_of(in_set, "imagenet val")
        entry["imagenet-o"] = ood_aupr(max_softmax(in_logits), max_softmax(out_logits))
    return entry


def evaluate_robustness(config_path: str, checkpoint: str, suites: Iterable[str] = TEST_SET_SUITES, *,
                        device: Optional[str] = None, batch_size: Optional[int] = None,
                        max_samples: Optional[int] = None, attack_max_samples: Optional[int] = None,
                        num_workers: Optional[int] = None, amp: bool = False,
                        seed: int = 0, occlusion_ratios: Sequence[float] = DEFAULT_OCCLUSION_RATIOS,
                        occlusion_patch_size: Union[None, int, Sequence[int]] = None,
                        shuffle_grids: Optional[Sequence[int]] = None, epsilons: Sequence[float] = DEFAULT_EPSILONS, pgd_steps: int = 10,
                        imagenet_a: Optional[str] = None, imagenet_r: Optional[str] = None,
                        imagenet_o: Optional[str] = None, imagenet_val: Optional[str] = None,
                        progress: bool = True, name: Optional[str] = None, ema: bool = False) -> dict:
    """Robustness of one checkpoint of ``config_path``'s model (``ema``: its EMA weights) → its entry of
    ``robustness.json``:
    ``{"checkpoint", "clean_top1", <suite>: ...}`` with only the requested suites (see the module docstring).

    ``batch_size`` / ``num_workers`` default to the config's test loader; ``max_samples`` keeps the first N samples
    of every dataset (the test set, ImageNet-A/R/O and the ImageNet val set of the AUPR); ``attack_max_samples``
    runs FGSM / PGD on the first N test samples only (PGD costs ~30 forward-backward passes per image); ``amp``:
    bf16 autocast on CUDA for the clean, occlusion, shuffle and ImageNet-A/R/O passes (never for the attacks);
    ``imagenet_*``: folders with one sub-folder per WordNet id, required by the suite of the same name
    (``imagenet_val`` defaults to the config's test set). Raises FileNotFoundError naming a missing config,
    checkpoint or dataset folder, ValueError for a class folder that is not an ImageNet WordNet id.
    """
    suites = tuple(dict.fromkeys(suites))
    _check_arguments(suites, max_samples, attack_max_samples)
    dev = _resolve_device(device, amp)
    cfg = load_config(config_path)
    if not osp.isfile(checkpoint):
        raise MissingPathError(f"checkpoint not found: {checkpoint}")
    folders = {"imagenet-a": imagenet_a, "imagenet-r": imagenet_r, "imagenet-o": imagenet_o}
    subset_indices = _imagenet_subsets(cfg, suites, folders, imagenet_val)

    classifier = load_classifier(cfg, checkpoint, ema=ema)
    token_stride = stride_of(classifier) or stride_of(getattr(classifier, "backbone", None))
    loader_cfg = _test_dataset_cfg(cfg)
    test_set, mean, std = _build_pixel_dataset(loader_cfg["dataset"])
    model = NormalizedModel(classifier, mean, std).to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # attacks differentiate w.r.t. the input only
    batch_size = batch_size or loader_cfg.get("batch_size", 128)
    num_workers = loader_cfg.get("num_workers", 0) if num_workers is None else num_workers
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
    label = name or osp.basename(osp.dirname(osp.abspath(checkpoint)))

    entry = {"checkpoint": checkpoint}
    entry.update(_evaluate_test_set(
        model, _loader(_limit(test_set, max_samples), batch_size, num_workers, dev), suites, seed=seed,
        occlusion_ratios=occlusion_ratios, occlusion_patch_size=occlusion_patch_size, shuffle_grids=shuffle_grids,
        epsilons=epsilons, pgd_steps=pgd_steps, device=dev, autocast=autocast, token_stride=token_stride,
        progress=progress, desc=f"{label}: test set", attack_max_samples=attack_max_samples))

    def logits_of(dataset: Dataset, what: str) -> Tuple[torch.Tensor, torch.Tensor]:
        return _collect_logits(model, _loader(_limit(dataset, max_samples), batch_size, num_workers, dev), dev,
                               autocast, progress, f"{label}: {what}")

    entry.update(_imagenet_suites(logits_of, folders, subset_indices, test_set, imagenet_val))
    return entry

"""ImageNet with the teacher's dense label maps, for TokenMix (``mixpro_core.tokenmix.TokenMix``; docs/methods.md,
"TokenMix").

The maps are TokenLabeling's (github zihangJiang/TokenLabeling, "Label data": NFNet-F6 maps of the ImageNet training
set): one ``.pt`` file per training image holding a (2, k, H', W') tensor — ``[0]`` the top-k class scores and ``[1]``
their class ids at each cell of a dense H'×W' grid over the whole image. As the official TokenMix loader
(Sense-X/TokenMix ``relabel/dataset.py``), the map of ``root/split/<class>/<name>.<ext>`` is
``label_root/<class>/<name up to its first dot>.pt``.

:class:`LabelMapTransform` (``dict(type='token_label', ...)``) is the official training pipeline
(``relabel/label_transforms_factory.py``): horizontal flip of image and map together, RandAugment on the whole image
whose geometric ops (rotate, shear, relative translate) move the map too (``relabel/random_augment_label.py``: the same
affine on the map's own grid, nearest cell, scores 0 / edge ids outside), then RandomResizedCrop of the image only,
its box kept as fractions (x0, y0, x1, y1) of the image — TokenMix pools the map from that box
(``mixpro_core.tokenmix.gt_token_maps``).

The dataset contract (classification.data.transforms) is extended for these samples: ``data_samples`` is
``dict(labels=int, label_scores=(k,H',W') float32, label_indices=(k,H',W') int64, crop_box=(4,) float32)``, which
mmengine's ``default_collate`` batches entry by entry and ``MixClassifier`` hands to the method as its ``extras``
(``mixpro_core.Method.EXTRAS``). A training dataset only: its ``data_samples`` are no evaluator's labels.
"""
from __future__ import annotations

import math
import os
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from PIL import Image
from mmengine.registry import DATASETS, TRANSFORMS
from scipy import ndimage
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation, str_to_interp_mode, str_to_pil_interp
from torchvision.transforms import ColorJitter
from torchvision.transforms import functional as F

from classification.data.augment_compat import patch_posterize
from classification.data.imagenet import ImageNetFolder, decode_rgb
from classification.data.transforms import TransformSpec, resolve_transform
from classification.foundation.errors import MissingPathError, UserError

__all__ = ["LabelMapError", "label_map_path", "load_label_map", "affine_label_map", "LabelMapTransform",
           "ImageNetLabelMaps"]

LabelMap = Tuple[torch.Tensor, torch.Tensor]  # scores (k,H',W') float32, class ids (k,H',W') int64


class LabelMapError(UserError):
    """A label map that is missing or not in TokenLabeling's format; the message names the file. As for
    ``CorruptImageError``, a data-loader worker's traceback is cut from the message re-raised in the main process."""

    def __init__(self, message: str):
        if "Original Traceback" in message and "LabelMapError: " in message:
            message = message.rsplit("LabelMapError: ", 1)[1].strip()
        super().__init__(message)


def label_map_path(label_root: str, image_path: str) -> str:
    """``label_root/<class>/<stem>.pt`` for ``.../<class>/<stem>.<ext>`` (the official naming: the image's last two
    path parts, cut at the first dot)."""
    relative = "/".join(image_path.replace(os.sep, "/").split("/")[-2:]).split(".")[0]
    return os.path.join(label_root, *relative.split("/")) + ".pt"


def load_label_map(path: str) -> LabelMap:
    """(scores (k,H',W') float32, class ids (k,H',W') int64) of a TokenLabeling ``.pt`` file; LabelMapError naming the
    file when it is missing, unreadable or not a (2, k, H', W') tensor."""
    if not os.path.isfile(path):
        raise LabelMapError(f"{path}: label map not found (one TokenLabeling .pt file per training image, "
                            f"label_root/<class>/<image name>.pt)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure is a bad file
        raise LabelMapError(f"{path}: cannot read label map ({type(err).__name__}: {err})") from None
    if not isinstance(data, torch.Tensor) or data.dim() != 4 or data.shape[0] != 2 or 0 in data.shape:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise LabelMapError(f"{path}: label map of shape {shape}, expected a (2, k, H', W') tensor (TokenLabeling's "
                            f"top-k scores and class ids)")
    return data[0].float(), data[1].round().long()


def affine_label_map(scores: torch.Tensor, indices: torch.Tensor, matrix: Sequence[float]) -> LabelMap:
    """The map under the affine ``matrix`` = (a, b, c, d, e, f) of its own cells: output cell (r, c') reads input
    cell (a·r + b·c' + c, d·r + e·c' + f), nearest cell; scores 0 and the edge's ids outside (``scipy.ndimage``, as
    the official ``affine_label``)."""
    a, b, c, d, e, f = matrix
    affine = [[1, 0, 0, 0], [0, a, b, c], [0, d, e, f]]
    moved_scores = ndimage.affine_transform(scores.numpy(), matrix=affine, order=0, mode="constant")
    moved_ids = ndimage.affine_transform(indices.numpy(), matrix=affine, order=0, mode="nearest")
    return torch.from_numpy(moved_scores), torch.from_numpy(moved_ids)


def _map_op_matrix(name: str, arg: float, height: int, width: int) -> Tuple[float, ...]:
    """The official map affine (``random_augment_label.py``) of the RandAugment op ``name`` with level ``arg``."""
    if name == "ShearX":
        return 1, 0, 0, arg, 1, 0
    if name == "ShearY":
        return 1, arg, 0, 0, 1, 0
    if name == "TranslateXRel":
        return 1, 0, 0, 0, 1, arg * width
    if name == "TranslateYRel":
        return 1, 0, arg * height, 0, 1, 0
    cos, sin = math.cos(math.radians(arg)), math.sin(math.radians(arg))  # Rotate, about the map's centre
    cy, cx = height / 2.0, width / 2.0
    return cos, sin, cy - cos * cy - sin * cx, -sin, cos, cx + sin * cy - cos * cx


MAP_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
"""RandAugment ops that move the map with the image (the official ``NAME_TO_LABELOP``; the others leave it)."""


class _RecordedOp:
    """A RandAugment op's image function that also notes (name, level) of each application in ``log``."""

    def __init__(self, fn: Callable, name: str, log: List[Tuple[str, float]]):
        self.fn, self.name, self.log = fn, name, log

    def __call__(self, img, level, **kwargs):
        self.log.append((self.name, level))
        return self.fn(img, level, **kwargs)


@TRANSFORMS.register_module(name="token_label")
class LabelMapTransform:
    """``(PIL image, scores, ids) → (image (3,S,S), scores, ids, crop_box (4,))``: the official TokenMix training
    pipeline (module docstring) — flip (``hflip``), RandAugment (``auto_augment``; None: colour jitter
    ``color_jitter``), RandomResizedCrop to ``input_size`` (``scale``, ``ratio``, ``interpolation``), then as timm's
    transform: normalise + random erasing (``re_prob``, default 0.25), or with ``uint8=True`` a uint8 image whose
    normalisation and erasing run on the device (``ImageNetPreprocessor``). ``crop_box`` = (x0, y0, x1, y1) of the
    crop as fractions of the image (after the flip)."""

    def __init__(self, input_size: int = 224, scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5,
                 auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1", color_jitter: Optional[float] = 0.4,
                 interpolation: str = "bicubic", mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                 std: Sequence[float] = IMAGENET_DEFAULT_STD, re_prob: Optional[float] = None, re_mode: str = "pixel",
                 uint8: bool = False):
        if uint8 and re_prob:
            raise UserError(f"transform re_prob={re_prob} with uint8=True: random erasing runs on the device in uint8 "
                            f"mode; set it as data_preprocessor=dict(type='ImageNetPreprocessor', re_prob=...)")
        self.size, self.scale, self.ratio, self.hflip = input_size, tuple(scale), tuple(ratio), hflip
        self.interpolation, self.uint8 = str_to_interp_mode(interpolation), uint8
        self.mean, self.std = tuple(mean), tuple(std)
        self._applied: List[Tuple[str, float]] = []
        self.augment: Optional[Callable] = None
        if auto_augment:
            if not auto_augment.startswith("rand"):
                raise UserError(f"token_label transform: auto_augment={auto_augment!r}, only RandAugment ('rand-...') "
                                f"moves the label map with the image")
            hparams = dict(translate_const=int(input_size * 0.45), interpolation=str_to_pil_interp(interpolation),
                           img_mean=tuple(min(255, round(255 * x)) for x in mean))
            self.augment = patch_posterize(rand_augment_transform(auto_augment, hparams))
            for op in self.augment.ops:
                if op.name in MAP_OPS:
                    op.aug_fn = _RecordedOp(op.aug_fn, op.name, self._applied)
        elif color_jitter:
            self.augment = ColorJitter(*(float(color_jitter),) * 3)
        re_prob = 0.25 if re_prob is None and not uint8 else (re_prob or 0.0)
        self.erasing = RandomErasing(re_prob, mode=re_mode, device="cpu") if re_prob > 0 else None

    def __call__(self, img: Image.Image, scores: torch.Tensor, indices: torch.Tensor):
        if torch.rand(1) < self.hflip:
            img, scores, indices = F.hflip(img), scores.flip(-1), indices.flip(-1)
        if self.augment is not None:
            self._applied.clear()
            img = self.augment(img)
            for name, level in self._applied:
                scores, indices = affine_label_map(scores, indices, _map_op_matrix(name, level, *scores.shape[-2:]))
        top, left, height, width = RandomResizedCropAndInterpolation.get_params(img, self.scale, self.ratio)
        w, h = img.size
        box = torch.tensor([left / w, top / h, (left + width) / w, (top + height) / h], dtype=torch.float32)
        img = F.resized_crop(img, top, left, height, width, [self.size, self.size], self.interpolation)
        if self.uint8:
            return F.pil_to_tensor(img), scores, indices, box
        tensor = F.normalize(F.to_tensor(img), self.mean, self.std)
        return (tensor if self.erasing is None else self.erasing(tensor)), scores, indices, box


@DATASETS.register_module()
class ImageNetLabelMaps(ImageNetFolder):
    """:class:`~classification.data.imagenet.ImageNetFolder` (``root/split/<class>/<image>``) whose samples carry
    their teacher label map from ``label_root`` (module docstring) through ``transform`` (a
    :class:`LabelMapTransform` or its config ``dict(type='token_label', ...)``; None: the image as a float tensor,
    the whole map, box (0, 0, 1, 1)). MissingPathError for a missing ``label_root``; LabelMapError naming the file
    for a missing or malformed map (never skipped: ``skip_corrupt`` concerns the images)."""

    def __init__(self, root: str, label_root: str, split: str = "train", transform: TransformSpec = None,
                 skip_corrupt: bool = False):
        if not os.path.isdir(label_root):
            raise MissingPathError(f"label map folder {label_root} does not exist")
        super().__init__(root, split, None, skip_corrupt)
        self.label_root = label_root
        self.transform = resolve_transform(transform)

    def _load(self, index: int) -> dict:
        path, label = self.samples[index]
        img = decode_rgb(path, path)
        scores, indices = load_label_map(label_map_path(self.label_root, path))
        if self.transform is None:
            img, box = F.to_tensor(img), torch.tensor([0.0, 0.0, 1.0, 1.0])
        else:
            img, scores, indices, box = self.transform(img, scores, indices)
        return dict(inputs=img, data_samples=dict(labels=int(label), label_scores=scores, label_indices=indices,
                                                  crop_box=box))

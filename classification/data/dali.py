"""GPU JPEG decoding with NVIDIA DALI (optional extra ``pip install .[dali]``): ImageNet batches for our Runner.

:class:`DALIImageNet` wraps ``ImageNetFolder`` or ``ImageNetZip`` (which list the files and give the class indices)
and runs each batch through a DALI pipeline (:func:`build_pipeline`). Train: nvJPEG decode fused with the random-
resized-crop window (scale 0.08–1, ratio 3/4–4/3), bicubic resize to ``input_size``, flip (p 0.5), timm's RandAugment
rebuilt from DALI ops (:func:`timm_rand_augment`); eval: decode, bicubic resize of the shorter side to ``input_size /
crop_pct``, centre crop. ``dataset[indices]`` is one batch ``dict(inputs=(B,3,H,W) uint8, data_samples=(B,) int64)``
for :class:`~classification.data.preprocessor.ImageNetPreprocessor`, on the GPU (``device='cpu'``: same pipeline on
the CPU). The config's sampler deals the indices; ``num_workers`` must be 0. One pipeline seed per rank, from ``seed``
and the rank (``seed=None``: one drawn by ``mmengine.dist.sync_random_seed``). A corrupt image raises
:class:`~classification.data.imagenet.CorruptImageError`. Configs: docs/clusters.md, "GPU JPEG decoding (DALI)".
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATASETS
from timm.data.auto_augment import LEVEL_TO_ARG
from torch.utils.data import Dataset, get_worker_info

from classification.data.imagenet import CorruptImageError, ImageNetFolder, ImageNetZip, decode_rgb
from classification.data.transforms import ClassMetainfo

__all__ = ["DALIImageNet", "parse_rand_augment", "rand_augment_levels", "timm_rand_augment", "build_pipeline",
           "MAGNITUDE_BINS"]

MAGNITUDE_BINS = 101  # RandAugment levels 0, 0.1, …, 10 (timm's scale: _LEVEL_DENOM = 10)
FILL_VALUE = 128  # DALI's warp fill is one value for every channel (timm fills with the mean colour)
DEVICES = ("gpu", "cpu")


# ----------------------------------------------------------------------------------------------- RandAugment
def parse_rand_augment(spec: str) -> dict:
    """timm's RandAugment string → ``dict(n, m, mstd)``; only the increasing suite (``inc1``) is built here.

    ``'rand-m9-mstd0.5-inc1'`` → ``dict(n=2, m=9.0, mstd=0.5)``. ValueError for other policies or options."""
    parts = spec.split("-")
    if parts[0] != "rand":
        raise ValueError(f"DALI loader: auto_augment={spec!r} is not a RandAugment policy ('rand-...')")
    out, increasing = dict(n=2, m=10.0, mstd=0.0), False
    for part in parts[1:]:
        key = "mstd" if part.startswith("mstd") else "inc" if part.startswith("inc") else part[:1]
        value = part[len(key):]
        try:
            if key == "m":
                out["m"] = float(value)
            elif key == "n":
                out["n"] = int(value)
            elif key == "mstd":
                out["mstd"] = float(value)
            elif key == "inc":
                increasing = bool(int(value))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"DALI loader: RandAugment option {part!r} of {spec!r} is not supported (m, n, mstd, "
                             f"inc)") from None
    if not increasing:
        raise ValueError(f"DALI loader: auto_augment={spec!r}: only timm's increasing suite ('-inc1', the configs') "
                         f"is built for DALI")
    if not 0 <= out["m"] <= 10 or out["mstd"] < 0 or out["n"] < 1:
        raise ValueError(f"DALI loader: auto_augment={spec!r}: need 0 <= m <= 10, mstd >= 0, n >= 1")
    return out


def rand_augment_levels() -> np.ndarray:
    """The magnitude level of each bin: ``linspace(0, 10, MAGNITUDE_BINS)``."""
    return np.linspace(0.0, 10.0, MAGNITUDE_BINS)


def _timm_arg(name: str, level: float) -> float:
    """timm's parameter of op ``name`` at ``level`` (ops without a random sign only)."""
    return LEVEL_TO_ARG[name](level, {})[0]


def _posterize_mask(bits) -> np.ndarray:
    """Keep the ``bits`` high bits of a uint8 (0 bits → 0, black: our Pillow ≥ 13 fix of timm's posterize)."""
    bits = int(bits)
    return np.array(np.uint8((0xFF << (8 - bits)) & 0xFF), dtype=np.uint8)


def rand_augment_suite(translate_pct: float = 0.45) -> list:
    """timm's ``_RAND_INCREASING_TRANSFORMS`` as DALI augmentations, magnitudes per bin of :func:`rand_augment_levels`.

    The ops with a random sign (rotate, shear, translate, the four enhancements) scale linearly with the level as in
    timm; posterize, solarize and solarize-add take timm's own level → argument functions (``LEVEL_TO_ARG``)."""
    from nvidia.dali.auto_aug import augmentations as a
    levels = rand_augment_levels()
    linear = levels / 10.0
    timm = {name: np.array([_timm_arg(name, lv) for lv in levels])
            for name in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd")}
    return [
        a.auto_contrast,
        a.equalize,
        a.invert,
        a.rotate.augmentation(linear * 30.0, True),
        a.posterize.augmentation(timm["PosterizeIncreasing"], False, _posterize_mask),
        a.solarize.augmentation(timm["SolarizeIncreasing"], False),
        a.solarize_add.augmentation(timm["SolarizeAdd"], False),
        a.color.augmentation(linear * 0.9, True, a.shift_enhance_range),
        a.contrast.augmentation(linear * 0.9, True, a.shift_enhance_range),
        a.brightness.augmentation(linear * 0.9, True, a.shift_enhance_range),
        a.sharpness.augmentation(linear * 0.9, True, a.sharpness_kernel),
        a.shear_x.augmentation(linear * 0.3, True),
        a.shear_y.augmentation(linear * 0.3, True),
        a.translate_x.augmentation(linear * translate_pct, True),
        a.translate_y.augmentation(linear * translate_pct, True),
    ]


def timm_rand_augment(images, n: int, m: float, mstd: float, shape: Tuple[int, int], prob: float = 0.5):
    """timm's RandAugment on a DALI batch of HWC uint8 images (inside a pipeline with conditionals enabled).

    Each of ``n`` layers picks one op of :func:`rand_augment_suite` uniformly (with replacement) and applies it with
    probability ``prob`` at a level drawn per sample from N(m, mstd) clipped to [0, 10] (quantised to 0.1), its sign
    drawn at random for the signed ops — timm's ``RandAugment`` + ``AugmentOp``. ``shape``: (H, W) of the images."""
    from nvidia.dali import fn, types
    from nvidia.dali import math as dmath
    from nvidia.dali.auto_aug import augmentations as a
    from nvidia.dali.auto_aug.core import select, signed_bin
    suite = rand_augment_suite() + [a.identity]
    k = len(suite) - 1
    for _ in range(n):
        op = fn.random.choice(k + 1, p=[prob / k] * k + [1.0 - prob])  # index k: the op is not applied
        if mstd > 0:
            level = dmath.clamp(fn.random.normal(mean=m, stddev=mstd), 0.0, 10.0)
            bins = fn.cast(level * ((MAGNITUDE_BINS - 1) / 10.0), dtype=types.INT32)  # DALI casts round
        else:
            bins = int(round(m * (MAGNITUDE_BINS - 1) / 10.0))
        images = select(suite, op, data=images, magnitude_bin=signed_bin(bins), num_magnitude_bins=MAGNITUDE_BINS,
                        shape=shape, fill_value=FILL_VALUE)
    return images


# ----------------------------------------------------------------------------------------------- pipeline
def build_pipeline(is_train: bool, batch_size: int, device: str, input_size: int = 224, crop_pct: float = 224 / 256,
                   scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
                   auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1", num_threads: int = 4, seed: int = 0,
                   device_id: Optional[int] = None):
    """The DALI pipeline (module docstring): input ``jpegs`` (external source, up to ``batch_size`` encoded images,
    fed with ``feed_input``), output (B,3,input_size,input_size) uint8. ``device='gpu'`` needs ``device_id``."""
    from nvidia.dali import fn, pipeline_def, types
    if device not in DEVICES:
        raise ValueError(f"DALI loader: device must be one of {DEVICES}, got {device!r}")
    policy = parse_rand_augment(auto_augment) if is_train and auto_augment else None
    decoder = "mixed" if device == "gpu" else "cpu"

    @pipeline_def(enable_conditionals=policy is not None)
    def pipeline():
        jpegs = fn.external_source(name="jpegs", dtype=types.UINT8, ndim=1)
        if is_train:
            images = fn.decoders.image_random_crop(jpegs, device=decoder, output_type=types.RGB,
                                                   random_area=list(scale), random_aspect_ratio=list(ratio),
                                                   num_attempts=10)
            images = fn.resize(images, size=[input_size, input_size], interp_type=types.INTERP_CUBIC,
                               antialias=True)
            images = fn.flip(images, horizontal=fn.random.coin_flip(probability=0.5))
            if policy is not None:
                images = timm_rand_augment(images, shape=(input_size, input_size), **policy)
        else:
            images = fn.decoders.image(jpegs, device=decoder, output_type=types.RGB)
            images = fn.resize(images, resize_shorter=int(input_size / crop_pct), interp_type=types.INTERP_CUBIC,
                               antialias=True)
            images = fn.crop(images, crop=[input_size, input_size])
        return fn.transpose(images, perm=[2, 0, 1])

    pipe = pipeline(batch_size=batch_size, num_threads=num_threads, seed=seed, prefetch_queue_depth=1,
                    device_id=device_id if device == "gpu" else None)
    pipe.build()
    return pipe


# ----------------------------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class DALIImageNet(ClassMetainfo, Dataset):
    """An ImageNet dataset (``dataset``: a config of ``ImageNetFolder`` or ``ImageNetZip``) decoded by DALI.

    Args:
        dataset: config dict of the source dataset; its file list, labels and ``num_classes`` are used (its
            ``transform`` must be absent: the DALI pipeline is the transform; ``skip_corrupt`` is not supported).
        is_train: training pipeline (crop, flip, RandAugment) or evaluation (resize + centre crop).
        input_size, crop_pct, scale, ratio, auto_augment, interpolation: as the ``timm`` transform of our configs
            (only bicubic interpolation; RandAugment: :func:`parse_rand_augment`).
        device: 'gpu' (nvJPEG ``mixed`` decode, GPU ops; the current CUDA device) or 'cpu'.
        batch_size: the largest batch the pipeline takes (the dataloader's ``batch_size``).
        num_threads: DALI's host threads. seed: see the module docstring.

    ``dataset[indices]`` → ``dict(inputs=(B,3,H,W) uint8, data_samples=(B,) int64)``; ``dataset[i]`` → one sample
    ``dict(inputs=(3,H,W) uint8, data_samples=int)``.
    """

    def __init__(self, dataset: dict, is_train: bool, batch_size: int = 128, input_size: int = 224,
                 crop_pct: float = 224 / 256, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1",
                 interpolation: str = "bicubic", device: str = "gpu", num_threads: int = 4,
                 seed: Optional[int] = None):
        if device not in DEVICES:
            raise ValueError(f"DALIImageNet: device must be one of {DEVICES}, got {device!r}")
        if interpolation != "bicubic":
            raise ValueError(f"DALIImageNet: interpolation={interpolation!r}: only 'bicubic' (the configs') is built")
        if dataset.get("transform") is not None:
            raise ValueError("DALIImageNet: the source dataset must have no transform (the DALI pipeline is the "
                             "transform)")
        if dataset.get("skip_corrupt"):
            raise ValueError("DALIImageNet: skip_corrupt=True is not supported (a DALI batch cannot drop a sample); "
                             "a corrupt image raises CorruptImageError naming the file")
        if batch_size < 1:
            raise ValueError(f"DALIImageNet: batch_size must be >= 1, got {batch_size}")
        if auto_augment and is_train:
            parse_rand_augment(auto_augment)  # a bad policy fails here, not at the first batch
        self.source = DATASETS.build(dict(dataset))
        if not isinstance(self.source, (ImageNetFolder, ImageNetZip)):
            raise ValueError(f"DALIImageNet: dataset must be an ImageNetFolder or ImageNetZip, got "
                             f"{type(self.source).__name__}")
        self.num_classes = self.source.num_classes
        for key in ("cache_mode", "rank", "world_size"):  # what RankLocalSampler checks of an ImageNetZip
            if hasattr(self.source, key):
                setattr(self, key, getattr(self.source, key))
        self.is_train, self.device, self.batch_size = is_train, device, batch_size
        self._pipeline_args = dict(is_train=is_train, batch_size=batch_size, device=device, input_size=input_size,
                                   crop_pct=crop_pct, scale=tuple(scale), ratio=tuple(ratio),
                                   auto_augment=auto_augment, num_threads=num_threads)
        rank, world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        self.pipeline_seed = (self.seed * world_size + rank) % (2 ** 31)
        self._pipe = None

    def __len__(self) -> int:
        return len(self.source)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pipe"] = None  # a DALI pipeline is rebuilt in the process that uses it
        return state

    def label(self, index: int) -> int:
        if isinstance(self.source, ImageNetFolder):
            return int(self.source.samples[index][1])
        return int(self.source.targets[index])

    def encoded(self, index: int) -> Tuple[bytes, str]:
        """Sample ``index``'s encoded bytes and the name an error reports (the path; ``zip:member`` for a zip)."""
        if isinstance(self.source, ImageNetFolder):
            path = self.source.samples[index][0]
            with open(path, "rb") as f:
                return f.read(), path
        return self.source.read_bytes(index), f"{self.source.zip_path}:{self.source.members[index]}"

    def _pipeline(self):
        if self._pipe is None:
            if self.device == "gpu" and get_worker_info() is not None:
                raise ValueError("DALIImageNet(device='gpu') runs in the main process: set the dataloader's "
                                 "num_workers=0 (DALI's num_threads do the host work)")
            device_id = torch.cuda.current_device() if self.device == "gpu" else None
            self._pipe = build_pipeline(**self._pipeline_args, seed=self.pipeline_seed, device_id=device_id)
        return self._pipe

    def __getitems__(self, indices: Sequence[int]) -> dict:
        indices = [int(i) for i in indices]
        if not 0 < len(indices) <= self.batch_size:
            raise ValueError(f"DALIImageNet: a batch of {len(indices)} samples; the pipeline takes 1..{self.batch_size}"
                             f" (set the dataset's batch_size to the dataloader's)")
        encoded = [self.encoded(i) for i in indices]
        pipe = self._pipeline()
        pipe.feed_input("jpegs", [np.frombuffer(data, dtype=np.uint8) for data, _ in encoded])
        try:
            (images,) = pipe.run()
        except RuntimeError as err:
            self._pipe = None  # DALI invalidates a pipeline after an operator error
            raise self._decode_error(encoded, err) from None
        labels = torch.tensor([self.label(i) for i in indices], dtype=torch.int64)
        return dict(inputs=self._to_torch(images), data_samples=labels)

    def __getitem__(self, index: int) -> dict:
        batch = self.__getitems__([index])
        return dict(inputs=batch["inputs"][0], data_samples=int(batch["data_samples"][0]))

    @staticmethod
    def _decode_error(encoded: List[Tuple[bytes, str]], err: RuntimeError) -> CorruptImageError:
        """The CorruptImageError of the first image of the failed batch that PIL cannot decode either (the PyTorch
        loader's message); else one naming the batch's files with DALI's message."""
        for data, name in encoded:
            try:
                decode_rgb(data, name)
            except CorruptImageError as corrupt:
                return corrupt
        names = ", ".join(name for _, name in encoded[:4]) + (", ..." if len(encoded) > 4 else "")
        lines = [line for line in str(err).splitlines() if line.strip()]
        return CorruptImageError(f"DALI could not decode a batch of {len(encoded)} images ({names}); PIL decodes "
                                 f"them all: {lines[-1] if lines else err}")

    def _to_torch(self, images) -> torch.Tensor:
        tensor = images.as_tensor()
        if self.device == "cpu":
            return torch.from_numpy(np.array(tensor))
        from nvidia.dali.plugin.pytorch import feed_ndarray
        out = torch.empty(tensor.shape(), dtype=torch.uint8, device=torch.device("cuda", torch.cuda.current_device()))
        feed_ndarray(tensor, out, cuda_stream=torch.cuda.current_stream())
        return out

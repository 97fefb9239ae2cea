"""ImageNet as a folder tree (:class:`ImageNetFolder`) or as a zip + map file (:class:`ImageNetZip`), with the
corrupt-file policy they share; the dataset contract and the transforms: :mod:`classification.data.transforms`.

The ImageNet zip format: ``root/{split}.zip`` plus ``root/{split}_map.txt`` whose lines are
``<path inside the zip> <int label>`` (whitespace-separated), e.g. ``n01440764/n01440764_10026.JPEG 0`` or
``ILSVRC2012_val_00000001.JPEG 65``; members may sit under a top-level ``{split}/`` folder in the zip.

Importing this module (``classification.register_all`` does) registers both.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import warnings
import zipfile
from typing import Dict, List, Mapping, Optional, Tuple

from PIL import Image
from mmengine.dist import get_dist_info
from mmengine.registry import DATASETS
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from classification.data.transforms import ClassMetainfo, TransformSpec, apply_transform, resolve_transform
from classification.foundation.errors import MissingPathError, UserError

__all__ = ["CorruptImageError", "decode_rgb", "SkipCorruptMixin", "ImageNetFolder", "rank_shard", "ImageNetZip"]


class CorruptImageError(UserError):
    """An image file that cannot be decoded; the message names the file (a user's data: one ``error:`` line). torch
    raises a data-loader worker's error again in the main process with the worker's traceback as the message: only
    the worker's own message is kept."""

    def __init__(self, message: str):
        if "Original Traceback" in message and "CorruptImageError: " in message:
            message = message.rsplit("CorruptImageError: ", 1)[1].strip()
        super().__init__(message)


def decode_rgb(source, name: str) -> Image.Image:
    """Decode ``source`` (a path or the encoded bytes) to an RGB image; CorruptImageError naming ``name``."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptImageError(f"{name}: cannot decode image ({type(err).__name__}: {err})") from None


class SkipCorruptMixin:
    """``skip_corrupt=False``: a corrupt image raises CorruptImageError naming the file. ``True``: a warning names the
    file, the next decodable sample is returned instead, and the skip is counted (``pop_skipped()``; counted across
    forked DataLoader workers through shared memory, reported at the end of each epoch by CorruptSampleHook)."""

    def _init_skip(self, skip_corrupt: bool) -> None:
        self.skip_corrupt = skip_corrupt
        self._skipped = mp.get_context("fork").Value("i", 0) if skip_corrupt else None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_skipped"] = None  # shared counters pass to forked workers only; pickled copies warn without counting
        return state

    def __getitem__(self, index: int) -> dict:
        """``self._load(i)`` of the dataset, with the corrupt-file policy above."""
        for attempt in range(len(self)):
            try:
                return self._load((index + attempt) % len(self))
            except CorruptImageError as err:
                if not self.skip_corrupt:
                    raise
                warnings.warn(f"skipping corrupt sample: {err}")
                if self._skipped is not None:
                    with self._skipped.get_lock():
                        self._skipped.value += 1
        raise CorruptImageError(f"{type(self).__name__}: no decodable image in the whole dataset")

    def pop_skipped(self) -> int:
        """Number of corrupt samples skipped since the last call (0 when skipping is off)."""
        if self._skipped is None:
            return 0
        with self._skipped.get_lock():
            n, self._skipped.value = self._skipped.value, 0
        return n


@DATASETS.register_module()
class ImageNetFolder(ClassMetainfo, SkipCorruptMixin, Dataset):
    """ImageNet as ``root/split/<class>/<image>`` (torchvision ``ImageFolder``); images decoded to RGB.

    Labels are class-folder indices in sorted order; ``classes``, ``class_to_idx`` and ``samples`` come from
    ImageFolder. Raises MissingPathError for a missing split folder and UserError naming an empty class folder;
    corrupt images: see :class:`SkipCorruptMixin`.
    """

    def __init__(self, root: str, split: str = "train", transform: TransformSpec = None, skip_corrupt: bool = False):
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise MissingPathError(f"ImageNet folder {folder} does not exist")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir() and not self._has_image(entry.path):
                raise UserError(f"class folder {entry.path} holds no image ({', '.join(IMG_EXTENSIONS)})")
        self.transform = resolve_transform(transform)
        self._folder = ImageFolder(folder)
        self.root, self.split = root, split
        self.classes, self.class_to_idx = self._folder.classes, self._folder.class_to_idx
        self.samples = self._folder.samples  # [(path, label)]
        self.num_classes = len(self.classes)
        self._init_skip(skip_corrupt)

    @classmethod
    def config_class_count(cls, dataset_cfg: Mapping) -> Optional[int]:
        """The number of class folders the dataset config ``dict(type=..., root=..., split=...)`` would read, None
        for a missing folder: the engine's check against the model's class count before anything is built
        (:func:`classification.engine.config_check.check_class_counts`)."""
        folder = os.path.join(str(dataset_cfg.get("root", "")), str(dataset_cfg.get("split", "train")))
        if not os.path.isdir(folder):
            return None
        return sum(entry.is_dir() for entry in os.scandir(folder))

    @staticmethod
    def _has_image(path: str) -> bool:
        return any(has_file_allowed_extension(f, IMG_EXTENSIONS) for _, _, files in os.walk(path) for f in files)

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> dict:
        path, label = self.samples[index]
        return dict(inputs=apply_transform(self.transform, decode_rgb(path, path)), data_samples=int(label))


# --------------------------------------------------------------------------------------------------- ImageNet zip
def rank_shard(num_samples: int, rank: int, world_size: int) -> range:
    """The indices rank ``rank`` of ``world_size`` owns: ``i % world_size == rank`` (the shard ImageNetZip caches in
    'part' mode and RankLocalSampler reads)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1} (world_size={world_size})")
    return range(rank, num_samples, world_size)


@DATASETS.register_module()
class ImageNetZip(ClassMetainfo, SkipCorruptMixin, Dataset):
    """ImageNet as ``root/{split}.zip`` + ``root/{split}_map.txt`` (see the module docstring); images → RGB.

    ``cache_mode``: 'no' reads each image's bytes from the zip on access; 'full' reads every image's bytes into
    memory at construction; 'part' caches only this rank's shard :func:`rank_shard` (indices ``i % world_size ==
    rank``; rank and world size from ``mmengine.dist.get_dist_info()`` unless given) and reads the others on access —
    train it with :class:`RankLocalSampler`, which reads only that shard (a global sampler such as mmengine's
    ``DefaultSampler(shuffle=True)`` deals each rank a different random shard every epoch, so about 1/world_size of
    its reads would hit the cache; :meth:`check_loader_config` rejects that pairing before anything is built).
    The ZipFile handle is opened lazily and per process (keyed by ``os.getpid()``), never shared by forked workers.
    ``num_classes`` is ``max label + 1`` unless given.
    """
    CACHE_MODES = ("no", "part", "full")

    @classmethod
    def check_loader_config(cls, key: str, dataset_cfg: Mapping, sampler_cfg: Mapping) -> None:
        """UserError when the dataloader ``key`` reads this dataset (config ``dataset_cfg``) with ``cache_mode='part'``
        through a sampler (config ``sampler_cfg``, its ``type`` a name or a class) other than RankLocalSampler
        (:func:`classification.engine.config_check.check_cache_sampler`)."""
        from classification.data.sampler import RankLocalSampler  # (sampler.py imports this module)
        sampler = sampler_cfg.get("type")
        if dataset_cfg.get("cache_mode") == "part" and sampler not in (RankLocalSampler.__name__, RankLocalSampler):
            raise UserError(f"{key}: ImageNetZip(cache_mode='part') caches only each rank's own shard, but the "
                            f"sampler {getattr(sampler, '__name__', sampler)!r} deals every rank other indices: use "
                            f"sampler=dict(type='RankLocalSampler') (or cache_mode 'full' / 'no')")

    def __init__(self, root: str, split: str = "train", transform: TransformSpec = None, cache_mode: str = "no",
                 num_classes: Optional[int] = None, rank: Optional[int] = None, world_size: Optional[int] = None,
                 skip_corrupt: bool = False):
        self._init_skip(skip_corrupt)
        if cache_mode not in self.CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {self.CACHE_MODES}, got {cache_mode!r}")
        self.root, self.split, self.cache_mode = root, split, cache_mode
        self.zip_path = os.path.join(root, f"{split}.zip")
        self.map_path = os.path.join(root, f"{split}_map.txt")
        for path in (self.zip_path, self.map_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"ImageNet zip dataset file {path} not found")
        entries = self._read_map(self.map_path)
        self.targets: List[int] = [label for _, label in entries]
        self.members: List[str] = self._resolve_members([p for p, _ in entries])
        max_label = max(self.targets, default=-1)
        self.num_classes = max_label + 1 if num_classes is None else num_classes
        if max_label >= self.num_classes:
            raise ValueError(f"{self.map_path}: label {max_label} >= num_classes={self.num_classes}")
        self.transform = resolve_transform(transform)
        self._handle: Optional[Tuple[int, zipfile.ZipFile]] = None

        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self._cache: Dict[int, bytes] = {}
        if cache_mode != "no":
            keep = range(len(self)) if cache_mode == "full" else rank_shard(len(self), self.rank, self.world_size)
            with zipfile.ZipFile(self.zip_path) as zf:
                self._cache = {i: zf.read(self.members[i]) for i in keep}

    def _read_map(self, map_path: str) -> List[Tuple[str, int]]:
        entries = []
        with open(map_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                parts = line.strip().rsplit(maxsplit=1)
                try:
                    if len(parts) != 2:
                        raise ValueError
                    label = int(parts[1])
                    if label < 0:
                        raise ValueError
                except ValueError:
                    raise ValueError(f"{map_path}, line {lineno}: expected '<path> <non-negative int label>', "
                                     f"got {line.rstrip()!r}") from None
                entries.append((parts[0].strip(), label))
        return entries

    def _resolve_members(self, paths: List[str]) -> List[str]:
        """Map path → zip member: ``path`` itself, else ``{split}/path``; ValueError naming the first missing one."""
        with zipfile.ZipFile(self.zip_path) as zf:
            names = set(zf.namelist())
        members, missing = [], []
        for p in paths:
            if p in names:
                members.append(p)
            elif f"{self.split}/{p}" in names:
                members.append(f"{self.split}/{p}")
            else:
                missing.append(p)
        if missing:
            raise ValueError(f"{self.map_path}: member {missing[0]!r} (also tried {self.split + '/' + missing[0]!r})"
                             f" is not in {self.zip_path} ({len(missing)} missing entries in all)")
        return members

    @property
    def cached_indices(self) -> List[int]:
        """Sorted indices whose bytes are held in memory."""
        return sorted(self._cache)

    def _zipfile(self) -> zipfile.ZipFile:
        pid = os.getpid()
        if self._handle is None or self._handle[0] != pid:
            self._handle = (pid, zipfile.ZipFile(self.zip_path))  # a forked copy's handle is dropped, not closed
        return self._handle[1]

    def read_bytes(self, index: int) -> bytes:
        """The encoded image bytes of sample ``index`` (from the cache if held)."""
        data = self._cache.get(index)
        return data if data is not None else self._zipfile().read(self.members[index])

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_handle"] = None
        return state

    def __len__(self) -> int:
        return len(self.targets)

    def _load(self, index: int) -> dict:
        img = decode_rgb(self.read_bytes(index), f"{self.zip_path}:{self.members[index]}")
        return dict(inputs=apply_transform(self.transform, img), data_samples=self.targets[index])

"""Classification data: Fashion-MNIST (IDX files), ImageNet (folder tree or zip + map file), transforms, sampler.

Every dataset is a plain :class:`torch.utils.data.Dataset` registered in mmengine's root ``DATASETS`` registry.
``dataset[i]`` is ``dict(inputs=image (C,H,W) float tensor, data_samples=int label)`` (a uint8 tensor with
``transform=dict(type='timm', ..., uint8=True)``), so mmengine's ``default_collate`` gives ``inputs`` (B,C,H,W) and
``data_samples`` (B,) int64. Each dataset has ``num_classes`` and ``metainfo`` (mmengine's ``dataset_meta``).

Transforms (the ``transform`` argument of every dataset) may be given as
  - ``None``: the image is only converted to a float tensor in [0, 1] (no normalisation);
  - a callable ``PIL.Image -> (C,H,W) tensor``;
  - a config dict built with mmengine's root ``TRANSFORMS`` registry, so Python configs can describe it:
      ``dict(type='timm', is_train=True, input_size=224, ...)`` → :func:`build_transform` (timm's
      ``create_transform``: RandAugment, colour jitter, random erasing, bicubic RandomResizedCrop; eval: resize
      to ``input_size / crop_pct`` then centre crop), and
      ``dict(type='fashion_mnist', is_train=True)`` → :func:`build_fashion_mnist_transform` (28×28 grayscale:
      pad-2 random crop + horizontal flip for training, an optional black ``border``, then ToTensor +
      Normalize(0.2860, 0.3530)).
    Any other transform registered in ``TRANSFORMS`` that maps a PIL image to a tensor works the same way.

The ImageNet zip format: ``root/{split}.zip`` plus ``root/{split}_map.txt`` whose lines are
``<path inside the zip> <int label>`` (whitespace-separated), e.g. ``n01440764/n01440764_10026.JPEG 0`` or
``ILSVRC2012_val_00000001.JPEG 65``; members may sit under a top-level ``{split}/`` folder in the zip.

:class:`RepeatAugSampler` (``DATA_SAMPLERS``) is timm's DeiT repeated-augmentation sampler with mmengine's
calling convention (``dataset=``, ``seed=``; rank and world size from ``mmengine.dist.get_dist_info()``).
:class:`RankLocalSampler` (``DATA_SAMPLERS``) shuffles within each rank's own shard, the one ImageNetZip caches
with ``cache_mode='part'``.

Importing the ``classification`` package (or this module) registers everything.
"""
from __future__ import annotations

import gzip
import io
import multiprocessing as mp
import os
import pickle
import warnings
import zipfile
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from timm.data.distributed_sampler import RepeatAugSampler as _TimmRepeatAugSampler
from torch.utils.data import Dataset, Sampler
from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms.functional import to_tensor

from classification.augment_compat import patch_posterize

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
TransformSpec = Union[None, Callable, dict]

__all__ = ["build_transform", "build_fashion_mnist_transform", "resolve_transform", "read_idx", "FashionMNIST",
           "ImageNetFolder", "ImageNetZip", "RepeatAugSampler", "CorruptImageError", "decode_rgb", "CIFAR",
           "rank_shard", "RankLocalSampler", "check_cache_sampler"]


# ----------------------------------------------------------------------------------------------------- transforms
@TRANSFORMS.register_module(name="timm")
def build_transform(is_train: bool, input_size: int = 224, in_chans: int = 3, mean: Optional[Tuple[float, ...]] = None,
                    std: Optional[Tuple[float, ...]] = None, auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1",
                    color_jitter: Optional[float] = 0.4, re_prob: Optional[float] = None,
                    interpolation: str = "bicubic", crop_pct: float = 224 / 256, re_mode: str = "pixel",
                    uint8: bool = False, **kwargs) -> Callable:
    """timm's ``create_transform``: PIL image → (in_chans, input_size, input_size) normalised float tensor.

    Train: RandomResizedCrop(bicubic) + flip + RandAugment (``auto_augment``; None disables it) + colour jitter
    (used by timm only when ``auto_augment`` is None) + random erasing (``re_prob``, default 0.25, per-pixel noise).
    Eval: resize to ``input_size / crop_pct`` and centre crop ``input_size`` (224/256 → resize 256, crop 224).
    ``mean``/``std`` default to ImageNet's (their channel average repeated when ``in_chans != 3``).
    ``uint8=True``: the same crops and augmentations ending in a uint8 (C,H,W) tensor (timm's prefetcher mode);
    normalisation and random erasing then run on the device in
    :class:`classification.data_preprocessor.ImageNetPreprocessor`, so ``re_prob`` must not be given here.
    Extra keyword arguments go to ``timm.data.create_transform`` unchanged.
    """
    if uint8 and re_prob:
        raise ValueError(f"transform re_prob={re_prob} with uint8=True: random erasing runs on the device in uint8 "
                         f"mode; set it as data_preprocessor=dict(type='ImageNetPreprocessor', re_prob=...)")
    re_prob = 0.25 if re_prob is None and not uint8 else (re_prob or 0.0)
    if mean is None:
        mean = IMAGENET_DEFAULT_MEAN if in_chans == 3 else (float(np.mean(IMAGENET_DEFAULT_MEAN)),) * in_chans
    if std is None:
        std = IMAGENET_DEFAULT_STD if in_chans == 3 else (float(np.mean(IMAGENET_DEFAULT_STD)),) * in_chans
    if is_train:  # patch_posterize: timm's 0-bit posterize under Pillow >= 13 (classification.augment_compat)
        return patch_posterize(create_transform(
            input_size, is_training=True, color_jitter=color_jitter, auto_augment=auto_augment,
            interpolation=interpolation, re_prob=re_prob, re_mode=re_mode, mean=tuple(mean), std=tuple(std),
            use_prefetcher=uint8, **kwargs))
    return create_transform(input_size, is_training=False, interpolation=interpolation, crop_pct=crop_pct,
                            mean=tuple(mean), std=tuple(std), use_prefetcher=uint8, **kwargs)


@TRANSFORMS.register_module(name="fashion_mnist")
def build_fashion_mnist_transform(is_train: bool, size: int = 28, padding: int = 2, border: int = 0) -> Callable:
    """PIL 'L' image (size×size) → (1,size+2·border,size+2·border) normalised tensor; train adds a padded random crop
    and a flip. ``border`` pads a black frame (Fashion-MNIST's background) around every image, e.g. 2 → 32×32 for a
    patch-8 model."""
    tail = [T.ToTensor(), T.Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)]
    head = [T.Pad(border)] if border else []
    if not is_train:
        return T.Compose(head + tail)
    return T.Compose([T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip(), *head, *tail])


def resolve_transform(spec: TransformSpec) -> Optional[Callable]:
    """None → None; a callable → itself; a dict → ``TRANSFORMS.build(spec)`` (see the module docstring)."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, dict):
        return TRANSFORMS.build(dict(spec))
    raise TypeError(f"transform must be None, a callable or a config dict, got {type(spec).__name__}")


def _apply(transform: Optional[Callable], img: Image.Image) -> torch.Tensor:
    return to_tensor(img) if transform is None else transform(img)


# -------------------------------------------------------------------------------------------------- Fashion-MNIST
_IDX_MAGIC = {2049: 1, 2051: 3}  # labels: (count,), images: (count, rows, cols); unsigned bytes


def read_idx(path: str, expected_magic: Optional[int] = None) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes: magic 2049 → labels (N,), magic 2051 → images (N,rows,cols).

    Raises FileNotFoundError if ``path`` is missing and ValueError (naming the file) on a bad magic, an
    unexpected magic, or a payload whose size does not match the header. (torchvision's
    ``read_sn3_pascalvincent_tensor`` reads only uncompressed files — the Debian package ships ``.gz`` — and checks
    the header with bare ``assert``s, so it is not used here.)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (Fashion-MNIST: `apt-get install dataset-fashion-mnist`)")
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        try:
            raw = f.read()
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: unreadable IDX file ({e})") from e
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if magic not in _IDX_MAGIC or (expected_magic is not None and magic != expected_magic):
        want = expected_magic if expected_magic is not None else sorted(_IDX_MAGIC)
        raise ValueError(f"{path}: bad IDX magic number {magic} (expected {want})")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes) "
                         f"but the file holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


class ClassMetainfo:
    """``metainfo``: what mmengine hands evaluators and visualisers as ``dataset_meta`` and stores in checkpoint
    meta — the number of classes and, where known, their names."""

    @property
    def metainfo(self) -> dict:
        names = getattr(self, "classes", None)
        return dict(num_classes=self.num_classes, **({} if names is None else {"classes": tuple(names)}))


@DATASETS.register_module()
class FashionMNIST(ClassMetainfo, Dataset):
    """Fashion-MNIST from its four IDX files (Debian package ``dataset-fashion-mnist``).

    The whole split is held in memory: ``data`` uint8 (N,28,28), ``targets`` int64 (N,). The transform receives a
    PIL 'L' image; without one, ``inputs`` is (1,28,28) float in [0,1]. ``limit`` keeps the first N samples.
    """
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    num_classes = 10
    _FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root: str = FASHION_MNIST_ROOT, split: str = "train", transform: TransformSpec = None,
                 limit: Optional[int] = None):
        if split not in self._FILES:
            raise ValueError(f"split must be one of {sorted(self._FILES)}, got {split!r}")
        img_path, lbl_path = (self._find(root, name) for name in self._FILES[split])
        images, labels = read_idx(img_path, 2051), read_idx(lbl_path, 2049)
        if len(images) != len(labels):
            raise ValueError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels")
        if labels.size and labels.max() >= self.num_classes:
            raise ValueError(f"{lbl_path}: label {int(labels.max())} outside 0..{self.num_classes - 1}")
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.root, self.split = root, split
        self.data = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform = resolve_transform(transform)

    @staticmethod
    def _find(root: str, name: str) -> str:
        """``root/name.gz``, else an uncompressed ``root/name``; the .gz path is the one reported when missing."""
        gz = os.path.join(root, name + ".gz")
        plain = os.path.join(root, name)
        return plain if not os.path.isfile(gz) and os.path.isfile(plain) else gz

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        img = self.data[index]
        if self.transform is None:
            inputs = img.unsqueeze(0).float().div_(255)
        else:
            inputs = self.transform(Image.fromarray(img.numpy()))
        return dict(inputs=inputs, data_samples=int(self.targets[index]))


# ------------------------------------------------------------------------------------------------ ImageNet folder
# ------------------------------------------------------------------------------------------- corrupt image files
class CorruptImageError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


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
    ImageFolder. Raises FileNotFoundError for a missing split folder and ValueError naming an empty class folder;
    corrupt images: see :class:`SkipCorruptMixin`.
    """

    def __init__(self, root: str, split: str = "train", transform: TransformSpec = None, skip_corrupt: bool = False):
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"ImageNet folder {folder} does not exist")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir() and not self._has_image(entry.path):
                raise ValueError(f"class folder {entry.path} holds no image ({', '.join(IMG_EXTENSIONS)})")
        self.transform = resolve_transform(transform)
        self._folder = ImageFolder(folder)
        self.root, self.split = root, split
        self.classes, self.class_to_idx = self._folder.classes, self._folder.class_to_idx
        self.samples = self._folder.samples  # [(path, label)]
        self.num_classes = len(self.classes)
        self._init_skip(skip_corrupt)

    @staticmethod
    def _has_image(path: str) -> bool:
        return any(has_file_allowed_extension(f, IMG_EXTENSIONS) for _, _, files in os.walk(path) for f in files)

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> dict:
        path, label = self.samples[index]
        return dict(inputs=_apply(self.transform, decode_rgb(path, path)), data_samples=int(label))


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
    its reads would hit the cache; :func:`check_cache_sampler` rejects that pairing).
    The ZipFile handle is opened lazily and per process (keyed by ``os.getpid()``), never shared by forked workers.
    ``num_classes`` is ``max label + 1`` unless given.
    """
    CACHE_MODES = ("no", "part", "full")

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
        return dict(inputs=_apply(self.transform, img), data_samples=self.targets[index])


# ---------------------------------------------------------------------------------------------------------- CIFAR
_PICKLE_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/str/numbers and numpy arrays only (the CIFAR batch files): nothing is executed."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch file")
        return super().find_class(module, name)


_CIFAR_LAYOUT = {  # num_classes → (folder, {split: batch files}, label key)
    10: ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
         "labels"),
    100: ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "fine_labels"),
}


@DATASETS.register_module()
class CIFAR(ClassMetainfo, Dataset):
    """CIFAR-10 / CIFAR-100 in the python-pickle format of the official archives — what
    ``torchvision.datasets.CIFAR100(root, download=True)`` leaves on disk (``cifar-100-python.tar.gz`` from
    https://www.cs.toronto.edu/~kriz/cifar.html, unpacked): ``root/cifar-100-python/{train,test}`` or
    ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}``; ``root`` may also be that folder itself.

    32×32 RGB images (PIL, then ``transform``), labels ``fine_labels`` (100 classes) or ``labels`` (10). The batch
    files are read with a restricted unpickler (arrays, lists, dicts, strings, numbers — no code runs), all into
    memory (150 MB for a training split).
    """

    def __init__(self, root: str, split: str = "train", num_classes: int = 100, transform: TransformSpec = None):
        if num_classes not in _CIFAR_LAYOUT:
            raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes}")
        folder, splits, label_key = _CIFAR_LAYOUT[num_classes]
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits)}, got {split!r}")
        base = root if os.path.basename(os.path.normpath(root)) == folder else os.path.join(root, folder)
        images, labels = [], []
        for name in splits[split]:
            path = os.path.join(base, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"CIFAR-{num_classes} batch file {path} not found (unpack "
                                        f"{folder.replace('-batches-py', '-python')}.tar.gz from "
                                        f"https://www.cs.toronto.edu/~kriz/cifar.html into {root})")
            with open(path, "rb") as f:
                entry = _ArrayUnpickler(f, encoding="latin1").load()
            if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
                raise ValueError(f"{path} is not a CIFAR-{num_classes} batch file (no 'data' / '{label_key}')")
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(v) for v in entry[label_key])
        self.data = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))  # (N,32,32,3)
        self.targets = labels
        if len(self.targets) != len(self.data):
            raise ValueError(f"CIFAR-{num_classes} {split}: {len(self.data)} images but {len(self.targets)} labels")
        self.root, self.split, self.num_classes = root, split, num_classes
        self.transform = resolve_transform(transform)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        img = Image.fromarray(self.data[index])
        return dict(inputs=_apply(self.transform, img), data_samples=self.targets[index])


# -------------------------------------------------------------------------------------------------------- sampler
@DATA_SAMPLERS.register_module()
class RepeatAugSampler(_TimmRepeatAugSampler):
    """DeiT's repeated-augmentation sampler (timm's), built the mmengine way.

    Each epoch shuffles the dataset (seeded by ``seed + epoch``), repeats every index ``num_repeats`` times
    consecutively and deals the stream round-robin over ranks, so the copies of a sample land on different ranks.
    As in DeiT/PVT each rank yields ``len(dataset) // selected_round * selected_round / world_size`` samples
    (``ceil(len / world_size)`` for datasets smaller than ``selected_round``): an epoch keeps its usual length
    and sees about 1/num_repeats of the images. Pass ``selected_ratio=world_size / num_repeats`` (and
    ``selected_round=0``) to iterate the whole repeated stream instead.
    ``rank``/``world_size`` default to ``mmengine.dist.get_dist_info()``; ``seed=None`` draws one shared seed
    with ``mmengine.dist.sync_random_seed()``. Config: ``sampler=dict(type='RepeatAugSampler', shuffle=True,
    num_repeats=3, seed=None)``; call ``set_epoch(epoch)`` each epoch (mmengine's loops do).
    """

    def __init__(self, dataset, shuffle: bool = True, num_repeats: int = 3, seed: Optional[int] = None,
                 rank: Optional[int] = None, world_size: Optional[int] = None, selected_round: int = 256,
                 selected_ratio: float = 0):
        dist_rank, dist_world = get_dist_info()
        super().__init__(dataset, num_replicas=dist_world if world_size is None else world_size,
                         rank=dist_rank if rank is None else rank, shuffle=shuffle, num_repeats=num_repeats,
                         selected_round=selected_round, selected_ratio=selected_ratio)
        self.seed = sync_random_seed() if seed is None else seed

    def __iter__(self):
        # timm seeds its generator with ``self.epoch`` and builds the index list eagerly: offset it by the seed.
        epoch = self.epoch
        self.epoch = self.seed + epoch
        try:
            return super().__iter__()
        finally:
            self.epoch = epoch


@DATA_SAMPLERS.register_module()
class RankLocalSampler(Sampler):
    """Each rank reads only its own shard :func:`rank_shard` — the indices an ImageNetZip with ``cache_mode='part'``
    holds in memory — shuffled within the shard each epoch; the shards of all ranks together cover the dataset once.

    The order of an epoch is a function of (``seed``, epoch, rank) — ``set_epoch(epoch)`` before iterating, as
    mmengine's loops do — so a resumed run reads what an uninterrupted one would. ``round_up=True`` (default) gives
    every rank ``ceil(len / world_size)`` indices, as DDP needs: a shard one short repeats the first index of its own
    order (still a cached one). ``round_up=False`` yields each shard as it is. ``shuffle=False`` yields the shard in
    ascending order, so an evaluator's rank interleaving restores the dataset order as with mmengine's
    ``DefaultSampler``. ``rank``/``world_size`` default to ``mmengine.dist.get_dist_info()``; ``seed=None`` draws one
    shared seed with ``mmengine.dist.sync_random_seed()``. Config: ``sampler=dict(type='RankLocalSampler')``.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None, round_up: bool = True,
                 rank: Optional[int] = None, world_size: Optional[int] = None):
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        if len(dataset) < self.world_size:
            raise ValueError(f"RankLocalSampler: {len(dataset)} samples cannot give each of {self.world_size} ranks "
                             f"a shard")
        if getattr(dataset, "cache_mode", None) == "part" and (dataset.rank, dataset.world_size) != (
                self.rank, self.world_size):
            raise ValueError(f"RankLocalSampler of rank {self.rank}/{self.world_size} over a dataset that cached the "
                             f"shard of rank {dataset.rank}/{dataset.world_size}: give both the same rank and "
                             f"world_size")
        self.dataset, self.shuffle, self.round_up = dataset, shuffle, round_up
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.shard = rank_shard(len(dataset), self.rank, self.world_size)
        self.num_samples = -(-len(dataset) // self.world_size) if round_up else len(self.shard)

    def __iter__(self):
        order = torch.arange(len(self.shard))
        if self.shuffle:
            generator = torch.Generator().manual_seed((self.seed + self.epoch) * self.world_size + self.rank)
            order = torch.randperm(len(self.shard), generator=generator)
        indices = [self.shard[i] for i in order.tolist()]
        return iter((indices + indices[:1])[:self.num_samples])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def check_cache_sampler(cfg) -> None:
    """ValueError when a dataloader of the config ``cfg`` (train/val/test) reads an ImageNetZip with
    ``cache_mode='part'`` through a sampler other than RankLocalSampler."""
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(key) or {}
        dataset, sampler = loader.get("dataset") or {}, (loader.get("sampler") or {}).get("type")
        if dataset.get("type") in ("ImageNetZip", ImageNetZip) and dataset.get("cache_mode") == "part" and \
                sampler not in ("RankLocalSampler", RankLocalSampler):
            raise ValueError(f"{key}: ImageNetZip(cache_mode='part') caches only each rank's own shard, but the "
                             f"sampler {getattr(sampler, '__name__', sampler)!r} deals every rank other indices: use "
                             f"sampler=dict(type='RankLocalSampler') (or cache_mode 'full' / 'no')")

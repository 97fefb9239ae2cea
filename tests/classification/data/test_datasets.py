"""Tests of classification.data: Fashion-MNIST IDX reading, ImageNet zip/folder datasets, transforms, sampler."""
import gzip
import io
import os
import pickle
import re
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DATA_SAMPLERS, DATASETS
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.functional import to_tensor

from classification.data.fashion_mnist import FASHION_MNIST_ROOT, FashionMNIST
from classification.data.imagenet import ImageNetFolder, ImageNetZip
from classification.data.sampler import RepeatAugSampler
from classification.data.transforms import build_transform, resolve_transform

FMNIST = FASHION_MNIST_ROOT
needs_fmnist = pytest.mark.needs_data(FMNIST)


# ------------------------------------------------------------------------------------------------- Fashion-MNIST
@pytest.fixture(scope="module")
def fmnist_train():
    return FashionMNIST(FMNIST, "train")


@needs_fmnist
def test_fashion_mnist_splits_labels_and_range(fmnist_train):
    test = FashionMNIST(FMNIST, "test")
    assert (len(fmnist_train), len(test)) == (60000, 10000)
    assert fmnist_train.targets[:5].tolist() == [9, 0, 0, 3, 0]
    assert test.targets[:5].tolist() == [9, 2, 1, 1, 6]
    assert fmnist_train.num_classes == len(fmnist_train.classes) == 10
    assert fmnist_train.data.dtype == torch.uint8 and fmnist_train.data.shape == (60000, 28, 28)
    item = fmnist_train[0]
    x = item["inputs"]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and item["data_samples"] == 9
    assert x.min() == 0 and x.max() == 1
    assert torch.equal((x * 255).round().to(torch.uint8)[0], fmnist_train.data[0])


@needs_fmnist
def test_fashion_mnist_transform_configs_and_limit():
    for is_train in (True, False):
        ds = FashionMNIST(FMNIST, "test", transform=dict(type="fashion_mnist", is_train=is_train), limit=7)
        assert len(ds) == 7
        x = ds[3]["inputs"]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    ev = FashionMNIST(FMNIST, "test", transform=dict(type="fashion_mnist", is_train=False), limit=1)
    expected = (ev.data[0].float() / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(ev[0]["inputs"][0], expected)
    batch = default_collate([ev[0], ev[0]])
    assert batch["inputs"].shape == (2, 1, 28, 28) and batch["data_samples"].dtype == torch.int64


def _write_idx(path, magic, shape, payload=None):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    payload = bytes(int(np.prod(shape))) if payload is None else payload
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def test_fashion_mnist_bad_idx_files(tmp_path):
    images = tmp_path / "train-images-idx3-ubyte.gz"
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    _write_idx(labels, 2049, (3,))
    _write_idx(images, 1234, (3, 28, 28))
    with pytest.raises(ValueError, match=re.escape(str(images)) + ".*magic"):
        FashionMNIST(str(tmp_path), "train")
    _write_idx(images, 2051, (3, 28, 28), payload=bytes(100))  # payload shorter than the header says
    with pytest.raises(ValueError, match=re.escape(str(images))):
        FashionMNIST(str(tmp_path), "train")
    _write_idx(images, 2051, (2, 28, 28))  # 2 images, 3 labels
    with pytest.raises(ValueError, match="2 images.*3 labels"):
        FashionMNIST(str(tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz.*apt-get install dataset-fashion-mnist"):
        FashionMNIST(str(tmp_path), "test")


# ---------------------------------------------------------------------------------------------------- ImageNet zip
def _jpeg(seed, size=(48, 40)):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def zip_root(tmp_path):
    """train.zip with members under train/<wnid>/ (map paths without the prefix), val.zip with bare names."""
    wnids = ["n01440764", "n01443537"]
    train = [(f"{wnids[i % 2]}/{wnids[i % 2]}_{i}.JPEG", i % 2, _jpeg(i)) for i in range(6)]
    val = [(f"ILSVRC2012_val_{i:08d}.JPEG", 1 - i % 2, _jpeg(100 + i)) for i in range(1, 4)]
    for split, items, prefix in (("train", train, "train/"), ("val", val, "")):
        with zipfile.ZipFile(tmp_path / f"{split}.zip", "w") as zf:
            for path, _, data in items:
                zf.writestr(prefix + path, data)
        (tmp_path / f"{split}_map.txt").write_text("".join(f"{p}\t{label}\n" for p, label, _ in items))
    return tmp_path, train, val


def test_imagenet_zip_items_match_source_jpegs(zip_root):
    root, train, val = zip_root
    for split, items in (("train", train), ("val", val)):
        ds = ImageNetZip(str(root), split)
        assert len(ds) == len(items) and ds.num_classes == 2
        assert [ds[i]["data_samples"] for i in range(len(ds))] == [label for _, label, _ in items]
        for i, (_, _, data) in enumerate(items):
            torch.testing.assert_close(ds[i]["inputs"], to_tensor(Image.open(io.BytesIO(data)).convert("RGB")),
                                       rtol=0, atol=0)
    assert ImageNetZip(str(root), "train").members[0] == "train/" + train[0][0]
    assert ImageNetZip(str(root), "val", num_classes=1000).num_classes == 1000


def test_imagenet_zip_cache_modes(zip_root, monkeypatch):
    root = str(zip_root[0])
    ref = ImageNetZip(root, "train", cache_mode="no", rank=1, world_size=2)
    part = ImageNetZip(root, "train", cache_mode="part", rank=1, world_size=2)
    full = ImageNetZip(root, "train", cache_mode="full", rank=1, world_size=2)
    assert (ref.cached_indices, part.cached_indices, full.cached_indices) == ([], [1, 3, 5], list(range(6)))
    for i in range(len(ref)):
        a, b, c = ref[i], part[i], full[i]
        assert a["data_samples"] == b["data_samples"] == c["data_samples"]
        assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["inputs"], c["inputs"])
    monkeypatch.setattr("classification.data.imagenet.get_dist_info", lambda: (2, 3))
    assert ImageNetZip(root, "train", cache_mode="part").cached_indices == [2, 5]
    with pytest.raises(ValueError, match="cache_mode"):
        ImageNetZip(root, "train", cache_mode="some")


def test_imagenet_zip_errors(zip_root):
    root, train, _ = zip_root
    with pytest.raises(FileNotFoundError, match="test.zip"):
        ImageNetZip(str(root), "test")
    map_path = root / "train_map.txt"
    lines = map_path.read_text().splitlines()
    map_path.write_text("\n".join(lines + ["n01440764/absent.JPEG 0"]) + "\n")
    with pytest.raises(ValueError, match=r"n01440764/absent\.JPEG.*" + re.escape(str(root / "train.zip"))):
        ImageNetZip(str(root), "train")
    map_path.write_text("\n".join(lines[:2] + [lines[2].split()[0] + " cat"] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{map_path}, line 3")):
        ImageNetZip(str(root), "train")


def test_imagenet_zip_dataloader_workers_and_registry(zip_root):
    root = str(zip_root[0])
    ds = DATASETS.build(dict(type="ImageNetZip", root=root, split="train", cache_mode="part", rank=0, world_size=2,
                             transform=dict(type="timm", is_train=False, input_size=32)))
    ds[0]
    assert ds._handle is None  # index 0 is cached: nothing opened
    ds[1]
    assert ds._handle[0] == os.getpid() and pickle.loads(pickle.dumps(ds))._handle is None
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=default_collate)
    batches = list(loader)
    assert [b["inputs"].shape for b in batches] == [(3, 3, 32, 32)] * 2
    labels = torch.cat([b["data_samples"] for b in batches])
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 1, 0, 1, 0, 1]
    torch.testing.assert_close(batches[0]["inputs"][1], ds[1]["inputs"])


# ------------------------------------------------------------------------------------------------- ImageNet folder
def test_imagenet_folder(tmp_path):
    for i in range(4):
        d = tmp_path / "val" / ["cls_a", "cls_b"][i % 2]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.JPEG").write_bytes(_jpeg(i))
    ds = ImageNetFolder(str(tmp_path), "val", transform=dict(type="timm", is_train=True, input_size=32))
    assert len(ds) == 4 and ds.num_classes == 2 and ds.classes == ["cls_a", "cls_b"]
    assert sorted(ds[i]["data_samples"] for i in range(4)) == [0, 0, 1, 1]
    assert ds[0]["inputs"].shape == (3, 32, 32)
    raw = ImageNetFolder(str(tmp_path), "val")
    torch.testing.assert_close(raw[0]["inputs"], to_tensor(Image.open(raw.samples[0][0]).convert("RGB")))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "train"))):
        ImageNetFolder(str(tmp_path), "train")
    (tmp_path / "val" / "cls_c").mkdir()
    (tmp_path / "val" / "cls_c" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "val" / "cls_c"))):
        ImageNetFolder(str(tmp_path), "val")


# ----------------------------------------------------------------------------------------------------- sampler
def test_repeat_aug_sampler_full_stream_covers_dataset():
    data = list(range(10))
    ranks = [RepeatAugSampler(data, num_repeats=3, seed=0, rank=r, world_size=2, selected_round=0,
                              selected_ratio=2 / 3) for r in range(2)]
    streams = [list(s) for s in ranks]
    assert [len(s) for s in streams] == [15, 15]
    assert Counter(streams[0] + streams[1]) == {i: 3 for i in data}
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != streams[0]
    ranks[0].set_epoch(0)
    assert list(ranks[0]) == streams[0]


def test_repeat_aug_sampler_deit_default_and_registry():
    data = list(range(11))
    ranks = [RepeatAugSampler(data, seed=5, rank=r, world_size=2) for r in range(2)]
    streams = [list(s) for s in ranks]
    assert [len(s) for s in ranks] == [6, 6] == [len(s) for s in streams]  # ceil(11 / 2): DeiT's epoch length
    counts = Counter(streams[0] + streams[1])
    assert max(counts.values()) <= 3 and sum(counts.values()) == 12
    # the Runner's call: default_args carry dataset and seed (an explicit seed in the config wins, as in mmengine)
    sampler = DATA_SAMPLERS.build(dict(type="RepeatAugSampler", shuffle=True, num_repeats=3),
                                  default_args=dict(dataset=data, seed=7))
    assert (sampler.seed, sampler.rank, sampler.num_replicas, len(sampler)) == (7, 0, 1, 11)
    drawn = DATA_SAMPLERS.build(dict(type="RepeatAugSampler", seed=None), default_args=dict(dataset=data, seed=7))
    assert isinstance(drawn.seed, int) and len(list(drawn)) == 11
    unshuffled = RepeatAugSampler(data, shuffle=False, seed=0, world_size=1, rank=0, selected_round=0,
                                  selected_ratio=1 / 3)
    assert list(unshuffled) == [i for i in data for _ in range(3)]


# -------------------------------------------------------------------------------------------------- transforms
def test_build_transform_shapes():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert build_transform(True, input_size=32)(img).shape == (3, 32, 32)
    assert build_transform(False, input_size=32)(img).shape == (3, 32, 32)
    gray = img.convert("L")
    assert build_transform(True, input_size=28, in_chans=1, auto_augment=None)(gray).shape == (1, 28, 28)
    assert resolve_transform(None) is None
    with pytest.raises(TypeError):
        resolve_transform("timm")

"""The in-memory batched data path (classification/data/in_memory.py) and the thread settings
(classification/foundation/host.py).

The kill -9 / resume test of the in-memory path is tests/classification/engine/test_reliability.py's
test_kill_9_then_resume_matches_an_uninterrupted_run (its default config is the in-memory one; it is parametrised
with random crop + flip on the batched path and with the per-sample path)."""
import gzip
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torchvision import transforms as T
from torchvision.transforms import functional as TF

import classification.register_all  # noqa: F401  (registration)
from classification.data.in_memory import (BatchedImageTransform, CIFARInMemory, FashionMNISTInMemory, SampleKey,
                                           SeededSampler, batch_collate)
from classification.data.transforms import build_fashion_mnist_transform
from classification.foundation.host import configure_threads, default_num_threads, usable_cores

from classification.foundation.host import ROOT
FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.needs_data(FMNIST)
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")


def raw_idx(name):
    """Independent IDX reader: images after a 16-byte header, labels after an 8-byte one."""
    with gzip.open(osp.join(FMNIST, name + ".gz"), "rb") as f:
        raw = f.read()
    if "images" in name:
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(raw, np.uint8, offset=8)


@needs_fmnist
def test_config_loader_yields_the_idx_samples_in_the_sampler_order():
    cfg = Config.fromfile(CONFIG)
    images, labels = raw_idx("train-images-idx3-ubyte"), raw_idx("train-labels-idx1-ubyte")
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=5)
    assert loader.num_workers == 0
    loader.sampler.set_epoch(2)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(5 + 2))  # DefaultSampler's order
    mean, std = 0.2860, 0.3530
    for b, batch in zip(range(3), loader):
        idx = order[b * 128:(b + 1) * 128].numpy()
        expected = torch.from_numpy(np.pad(images[idx], ((0, 0), (2, 2), (2, 2)))).float().div(255)
        expected = expected.sub(torch.tensor(mean)).div(torch.tensor(std)).unsqueeze(1)
        assert batch["inputs"].shape == (128, 1, 32, 32) and batch["inputs"].dtype == torch.float32
        assert torch.equal(batch["inputs"], expected)
        assert torch.equal(batch["data_samples"], torch.from_numpy(labels[idx].astype(np.int64)))
    assert len(loader) == len(labels) // 128  # drop_last


@needs_fmnist
def test_untransformed_batches_are_the_raw_pixels_and_the_per_sample_items():
    ds = FashionMNISTInMemory(FMNIST, split="test", limit=300)
    images, labels = raw_idx("t10k-images-idx3-ubyte"), raw_idx("t10k-labels-idx1-ubyte")
    idx = [299, 0, 17, 17, 250]
    batch = ds.__getitems__(idx)
    assert torch.equal(batch["inputs"], torch.from_numpy(images[idx]).float().div(255).unsqueeze(1))
    assert batch["data_samples"].tolist() == labels[idx].tolist()
    assert torch.equal(batch["inputs"], torch.stack([ds[i]["inputs"] for i in idx]))
    assert batch_collate(batch) is batch
    with pytest.raises(ValueError, match="batch_collate expects"):
        batch_collate([ds[0], ds[1]])


def test_seeded_sampler_keeps_the_default_order_and_keys_each_position():
    data = list(range(10))
    sampler = SeededSampler(data, shuffle=True, seed=3)
    sampler.set_epoch(4)
    keys = list(sampler)
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(7)).tolist()
    assert [k.index for k in keys] == expected
    assert keys[6] == SampleKey(expected[6], 3, 4, 6)


def test_batched_transform_equals_the_per_sample_transform_for_the_same_choices():
    per_sample = build_fashion_mnist_transform(is_train=True, border=2)
    bt = BatchedImageTransform.from_torchvision(per_sample)
    assert (bt.crop_size, bt.crop_padding, bt.flip_prob, bt.border) == ((28, 28), 2, 0.5, 2)
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    choices = bt.draw(64, 28, 28, torch.Generator().manual_seed(1))
    assert choices.flip.any() and not choices.flip.all() and len(set(choices.top.tolist())) == 5
    out = bt.apply(images, choices)
    tail = per_sample.transforms[2:]  # Pad(border), ToTensor, Normalize: the deterministic steps
    for i in range(64):
        img = TF.crop(TF.pad(TF.to_pil_image(images[i]), 2), int(choices.top[i]), int(choices.left[i]), 28, 28)
        img = TF.hflip(img) if choices.flip[i] else img
        for t in tail:
            img = t(img)
        assert torch.equal(out[i], img), i


def test_batched_crop_and_flip_draw_from_the_per_sample_distribution():
    bt = BatchedImageTransform.from_torchvision(build_fashion_mnist_transform(is_train=True))
    n = 40000
    c = bt.draw(n, 28, 28, torch.Generator().manual_seed(2))
    torch.manual_seed(0)  # torchvision's offsets on the 2-padded 32×32 image: the same support {0..4}
    assert {T.RandomCrop.get_params(torch.zeros(1, 32, 32), (28, 28))[0] for _ in range(500)} == set(range(5))
    for offsets in (c.top, c.left):
        counts = torch.bincount(offsets, minlength=5)
        assert len(counts) == 5  # support {0..4}, like torchvision's RandomCrop.get_params
        assert (counts - n / 5).abs().max() < 5 * (n * 0.2 * 0.8) ** 0.5  # uniform within 5 sigma
    assert abs(c.flip.float().mean().item() - 0.5) < 5 * (0.25 / n) ** 0.5


def test_unbatchable_transforms_are_refused_by_the_compiler():
    assert BatchedImageTransform.from_torchvision(T.Compose([T.RandomRotation(10), T.ToTensor()])) is None
    assert BatchedImageTransform.from_torchvision(T.Compose([T.RandomCrop(28, padding=2, padding_mode="reflect"),
                                                             T.ToTensor()])) is None
    assert BatchedImageTransform.from_torchvision(T.Compose([T.Pad(2)])) is None  # no ToTensor


@needs_fmnist
def test_random_batches_depend_on_the_key_only():
    ds = FashionMNISTInMemory(FMNIST, split="test", transform=dict(type="fashion_mnist", is_train=True), limit=64)
    keys = [SampleKey(i, 0, 1, 128 + i) for i in range(32)]
    torch.manual_seed(0)
    a = ds.__getitems__(keys)["inputs"]
    torch.manual_seed(1)
    b = ds.__getitems__(keys)["inputs"]
    assert torch.equal(a, b), "global RNG state leaked into the batch"
    moved = [k._replace(position=k.position + 32) for k in keys]  # the same images at another position
    assert not torch.equal(a, ds.__getitems__(moved)["inputs"])
    other_epoch = [k._replace(epoch=2) for k in keys]
    assert not torch.equal(a, ds.__getitems__(other_epoch)["inputs"])
    with pytest.raises(ValueError, match="SeededSampler"):
        ds.__getitems__(list(range(4)))


@needs_fmnist
def test_per_sample_fallback_is_seeded_per_batch_and_restores_global_rngs():
    ds = FashionMNISTInMemory(FMNIST, split="test", limit=16,
                              transform=T.Compose([T.RandomRotation(30), T.ToTensor()]))
    assert ds.batched_transform is None
    keys = [SampleKey(i, 0, 0, i) for i in range(8)]
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    a = ds.__getitems__(keys)["inputs"]
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    expected_after = (random.random(), np.random.rand(), torch.rand(1).item())
    assert after == expected_after, "the global RNGs were not restored"
    assert torch.equal(a, ds.__getitems__(keys)["inputs"])
    assert a.shape == (8, 1, 28, 28)


def test_cifar_in_memory_holds_nchw_uint8_and_batches_the_per_sample_items(tmp_path):
    import pickle
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        entry = {"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), "fine_labels": list(range(n))}
        (folder / split).write_bytes(pickle.dumps(entry))
    ds = CIFARInMemory(str(tmp_path), split="train")
    assert ds.images.shape == (6, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert torch.equal(ds.images[2].permute(1, 2, 0), torch.from_numpy(ds.data[2]))
    batch = ds.__getitems__([5, 1])
    assert torch.equal(batch["inputs"], torch.stack([ds[5]["inputs"], ds[1]["inputs"]]))
    assert batch["data_samples"].tolist() == [5, 1]


# ---------------------------------------------------------------------------------------------------------- threads
def test_default_threads_leave_a_core_per_loader_worker():
    assert default_num_threads(0, cores=2) == 2
    assert default_num_threads(2, cores=2) == 1
    assert default_num_threads(3, cores=8) == 5
    assert default_num_threads(0, cores=8, local_processes=4) == 2
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_configure_threads_respects_explicit_settings(monkeypatch):
    before = torch.get_num_threads()
    try:
        cfg = Config(dict(train_dataloader=dict(num_workers=0)))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        assert configure_threads(cfg) == 1  # the user's OMP_NUM_THREADS wins over the default
        assert configure_threads(Config(dict(env_cfg=dict(num_threads=2)))) == 2  # an explicit setting wins
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        assert configure_threads(cfg) == usable_cores()
        with pytest.raises(ValueError, match="num_threads"):
            configure_threads(num_threads=0)
    finally:
        torch.set_num_threads(before)

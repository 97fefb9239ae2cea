"""classification.data.dali on DALI's CPU pipeline (the GPU one differs only in the device of its ops): uint8 batches
with the folder's / map file's labels, determinism for a seed, sharding by the sampler, the corrupt-file error, the
RandAugment parameters against timm's, and the config switch built by mmengine's Runner."""
import os.path as osp
import re
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner
from PIL import Image
from timm.data.auto_augment import LEVEL_TO_ARG
from torch.utils.data import DataLoader

import classification.register_all  # noqa: F401  (registration)
from classification.data.dali import (DALIImageNet, parse_rand_augment, rand_augment_levels, rand_augment_suite,
                                      timm_rand_augment)
from classification.data.imagenet import CorruptImageError

from classification.foundation.host import ROOT
CLASSES, PER_CLASS, SIZE = ("a", "b", "c"), 4, 32


def _colour(k: int):
    """Flat colour of image k: its centre crop tells which image it was."""
    return (20 * k + 10, 255 - 20 * k, 60 + 15 * k)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Folder ``root/train/<class>/<i>.JPEG`` (12 flat-coloured images of different sizes) and the same images as
    ``zip_root/train.zip`` + ``train_map.txt`` (map order reversed, members under ``train/``)."""
    root = tmp_path_factory.mktemp("imagenet")
    zip_root = tmp_path_factory.mktemp("imagenet_zip")
    lines = []
    with zipfile.ZipFile(zip_root / "train.zip", "w") as zf:
        for c, name in enumerate(CLASSES):
            (root / "train" / name).mkdir(parents=True)
            for i in range(PER_CLASS):
                k = c * PER_CLASS + i
                path = root / "train" / name / f"{i}.JPEG"
                Image.new("RGB", (40 + 3 * k, 48 + 2 * i), _colour(k)).save(path, quality=95)
                zf.write(path, f"train/{name}/{i}.JPEG")
                lines.append(f"{name}/{i}.JPEG {c}")
    (zip_root / "train_map.txt").write_text("\n".join(reversed(lines)) + "\n")
    return root, zip_root


def _folder(root, **kw):
    args = dict(is_train=True, batch_size=len(CLASSES) * PER_CLASS, input_size=SIZE, device="cpu", num_threads=1,
                seed=0, auto_augment=None)
    args.update(kw)
    return DALIImageNet(dict(type="ImageNetFolder", root=str(root), split="train"), **args)


def _which(images: torch.Tensor) -> list:
    """Index k of the flat colour nearest to each (3,H,W) image's mean colour."""
    table = torch.tensor([_colour(k) for k in range(len(CLASSES) * PER_CLASS)], dtype=torch.float32)
    means = images.float().mean(dim=(2, 3))
    return torch.cdist(means, table).argmin(dim=1).tolist()


def test_folder_batches_are_uint8_with_the_folder_labels(data):
    root, _ = data
    for is_train in (True, False):
        ds = _folder(root, is_train=is_train)
        indices = [11, 0, 5, 7, 2]
        batch = ds.__getitems__(indices)
        assert batch["inputs"].dtype == torch.uint8 and batch["inputs"].shape == (5, 3, SIZE, SIZE)
        assert batch["data_samples"].dtype == torch.int64
        want = [CLASSES.index(osp.basename(osp.dirname(ds.source.samples[i][0]))) for i in indices]
        assert batch["data_samples"].tolist() == want == [2, 0, 1, 1, 0]
        assert _which(batch["inputs"]) == [ds.source.samples[i][0].endswith(f"{k % PER_CLASS}.JPEG") and k
                                           for i, k in zip(indices, [11, 0, 5, 7, 2])]
    single = ds[5]
    assert single["inputs"].shape == (3, SIZE, SIZE) and single["data_samples"] == 1
    # eval: resize the shorter side to SIZE / crop_pct, then a centre crop; a flat image stays flat
    assert (single["inputs"].float() - torch.tensor(_colour(5)).view(3, 1, 1)).abs().max() <= 3


def test_zip_format_reads_members_and_map_labels(data):
    _, zip_root = data
    ds = DALIImageNet(dict(type="ImageNetZip", root=str(zip_root), split="train"), is_train=False, batch_size=12,
                      input_size=SIZE, device="cpu", num_threads=1, seed=0)
    batch = ds.__getitems__(range(12))
    assert batch["data_samples"].tolist() == [c for c in reversed(range(3)) for _ in range(PER_CLASS)]
    assert _which(batch["inputs"]) == list(reversed(range(12)))  # the map lists the images in reverse order
    assert ds.num_classes == 3


def test_rand_augment_pipeline_is_deterministic_for_a_seed(data):
    root, _ = data
    first, same, other = (_folder(root, seed=s, auto_augment="rand-m9-mstd0.5-inc1") for s in (7, 7, 8))
    for indices in ([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]):
        a, b, c = (ds.__getitems__(indices)["inputs"] for ds in (first, same, other))
        assert a.dtype == torch.uint8 and a.shape == (6, 3, SIZE, SIZE)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_rand_augment_matches_timm_parameters():
    assert parse_rand_augment("rand-m9-mstd0.5-inc1") == dict(n=2, m=9.0, mstd=0.5)
    assert parse_rand_augment("rand-n3-m7-inc1") == dict(n=3, m=7.0, mstd=0.0)
    for bad in ("rand-m9-mstd0.5", "augmix-m5", "rand-m9-mmax12-inc1", "rand-m11-inc1"):
        with pytest.raises(ValueError, match=re.escape(bad)):
            parse_rand_augment(bad)
    levels = rand_augment_levels()
    assert len(levels) == 101 and levels[90] == pytest.approx(9.0)
    suite = {aug.name: aug for aug in rand_augment_suite()}
    assert len(suite) == 15  # timm's _RAND_INCREASING_TRANSFORMS
    # timm at level 9: posterize keeps 1 bit, solarize threshold 26, solarize-add 99; rotate ±27°, shear ±0.27,
    # translate ±40.5 % of the side, enhancements 1 ± 0.81
    assert suite["posterize"].mag_range[90] == LEVEL_TO_ARG["PosterizeIncreasing"](9.0, {})[0] == 1
    assert suite["solarize"].mag_range[90] == LEVEL_TO_ARG["SolarizeIncreasing"](9.0, {})[0] == 26
    assert suite["solarize_add"].mag_range[90] == LEVEL_TO_ARG["SolarizeAdd"](9.0, {})[0] == 99
    expect = dict(rotate=27.0, shear_x=0.27, shear_y=0.27, translate_x=0.405, translate_y=0.405, color=0.81,
                  contrast=0.81, brightness=0.81, sharpness=0.81)
    for name, value in expect.items():
        assert suite[name].randomly_negate and suite[name].mag_range[90] == pytest.approx(value)
    assert callable(timm_rand_augment)


def test_sampler_shards_between_two_ranks_without_overlap(data, monkeypatch):
    root, _ = data
    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr("mmengine.dataset.sampler.get_dist_info", lambda r=rank: (r, 2))
        monkeypatch.setattr("classification.data.dali.get_dist_info", lambda r=rank: (r, 2))
        cfg = dict(batch_size=3, num_workers=0, drop_last=False, sampler=dict(type="DefaultSampler", shuffle=True),
                   collate_fn=dict(type="batch_collate"),
                   dataset=dict(type="DALIImageNet", is_train=False, batch_size=3, input_size=SIZE, device="cpu",
                                num_threads=1, seed=3,
                                dataset=dict(type="ImageNetFolder", root=str(root), split="train")))
        loader = Runner.build_dataloader(cfg, seed=5)
        loader.sampler.set_epoch(1)
        seen[rank] = []
        for batch in loader:
            ks = _which(batch["inputs"])
            assert batch["data_samples"].tolist() == [k // PER_CLASS for k in ks]
            seen[rank] += ks
        assert loader.dataset.pipeline_seed == 3 * 2 + rank  # DALI's draws: one seed per rank
    assert len(seen[0]) == len(seen[1]) == 6
    assert sorted(seen[0] + seen[1]) == list(range(12))
    assert seen[0] != sorted(seen[0])  # the sampler's shuffled order


def test_corrupt_jpeg_raises_naming_the_file(data, tmp_path):
    root, _ = data
    bad_root = tmp_path / "corrupt"
    (bad_root / "train" / "a").mkdir(parents=True)
    good = bad_root / "train" / "a" / "0.JPEG"
    good.write_bytes((root / "train" / "a" / "0.JPEG").read_bytes())
    bad = bad_root / "train" / "a" / "1.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    ds = _folder(bad_root, batch_size=2)
    with pytest.raises(CorruptImageError, match=re.escape(str(bad)) + ": cannot decode image"):
        ds.__getitems__([0, 1])
    assert ds.__getitems__([0])["inputs"].shape == (1, 3, SIZE, SIZE)  # the pipeline is rebuilt after the error


def test_bad_settings_are_refused(data):
    root, _ = data
    src = dict(type="ImageNetFolder", root=str(root), split="train")
    with pytest.raises(ValueError, match="device"):
        DALIImageNet(src, is_train=True, device="cuda")
    with pytest.raises(ValueError, match="skip_corrupt"):
        DALIImageNet(dict(src, skip_corrupt=True), is_train=True, device="cpu")
    with pytest.raises(ValueError, match="transform"):
        DALIImageNet(dict(src, transform=dict(type="timm", is_train=True)), is_train=True, device="cpu")
    with pytest.raises(ValueError, match="a batch of 13 samples"):
        _folder(root).__getitems__(list(range(12)) + [0])


def test_config_switch_builds_through_mmengine(data):
    root, zip_root = data
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification/deit-s_mixpro_8xb128-300e_in1k-dali.py"))
    assert cfg.train_dataloader.dataset.type == "DALIImageNet" and cfg.train_dataloader.num_workers == 0
    assert cfg.model.type == "MixClassifier" and cfg.val_dataloader.dataset.is_train is False
    loader_cfg = cfg.train_dataloader
    loader_cfg.batch_size = 4
    loader_cfg.dataset.update(batch_size=4, input_size=SIZE, device="cpu", num_threads=1, seed=0)
    loader_cfg.dataset.dataset.root = str(root)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert isinstance(loader, DataLoader) and len(loader) == 3  # 12 images, drop_last
    batch = next(iter(loader))
    assert batch["inputs"].dtype == torch.uint8 and batch["inputs"].shape == (4, 3, SIZE, SIZE)
    preprocessor = MODELS.build(cfg.data_preprocessor)
    out = preprocessor(batch, training=True)
    assert out["inputs"].dtype == torch.float32 and out["inputs"].shape == (4, 3, SIZE, SIZE)
    zip_cfg = Config.fromfile(osp.join(ROOT, "configs/classification/_base_/datasets/imagenet_dali_zip_bs128.py"))
    zip_cfg.val_dataloader.dataset.update(input_size=SIZE, device="cpu", num_threads=1, seed=0)
    zip_cfg.val_dataloader.dataset.dataset.update(root=str(zip_root), split="train", num_classes=None)
    assert zip_cfg.train_dataloader.sampler.type == "RankLocalSampler"
    assert zip_cfg.train_dataloader.dataset.dataset.cache_mode == "part"
    val = Runner.build_dataloader(zip_cfg.val_dataloader, seed=0)
    labels = torch.cat([b["data_samples"] for b in val])
    assert labels.tolist() == [c for c in reversed(range(3)) for _ in range(PER_CLASS)]

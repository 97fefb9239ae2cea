"""ImageNetZip's cache_mode='part' with RankLocalSampler: every index a rank reads is in its cache, the ranks together
cover the dataset, the order is a function of (seed, epoch, rank); the zip config pairs them and a global sampler is
rejected."""
import io
import os.path as osp
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, default_collate
from mmengine.registry import DATA_SAMPLERS
from PIL import Image
from torch.utils.data import DataLoader

from classification.data.imagenet import ImageNetZip
from classification.data.sampler import RankLocalSampler
from classification.engine.config_check import check_cache_sampler

from classification.foundation.host import ROOT
N, WORLD = 11, 3  # 11 % 3 != 0: shards of 4, 4 and 3


@pytest.fixture(scope="module")
def zip_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("zip")
    with zipfile.ZipFile(root / "train.zip", "w") as zf:
        for i in range(N):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(buf, "PNG")
            zf.writestr(f"train/c/{i}.png", buf.getvalue())
    (root / "train_map.txt").write_text("".join(f"c/{i}.png {i}\n" for i in range(N)))  # label = index
    return str(root)


def cache_only(root, rank, monkeypatch):
    """A 'part' dataset of ``rank`` whose zip cannot be opened any more: any read outside its cache raises."""
    ds = ImageNetZip(root, "train", cache_mode="part", rank=rank, world_size=WORLD)

    def no_zip():
        raise AssertionError("read from the zip: the index is not in this rank's cache")
    monkeypatch.setattr(ds, "_zipfile", no_zip)
    return ds


def read_epoch(ds, sampler, epoch):
    sampler.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=0, collate_fn=default_collate)
    return torch.cat([b["data_samples"] for b in loader]).tolist()  # labels are the indices


def test_each_rank_reads_only_its_cache_and_the_ranks_cover_the_dataset(zip_root, monkeypatch):
    seen = set()
    for rank in range(WORLD):
        ds = cache_only(zip_root, rank, monkeypatch)
        sampler = RankLocalSampler(ds, seed=5, rank=rank, world_size=WORLD)
        assert len(sampler) == 4  # ceil(11 / 3) on every rank, so DDP ranks step together
        epochs = [read_epoch(ds, sampler, e) for e in range(3)]
        for indices in epochs:
            assert len(indices) == 4 and set(indices) <= set(ds.cached_indices)
            assert set(indices) == set(ds.cached_indices), "a rank reads its whole shard every epoch"
        assert len({tuple(e) for e in epochs}) > 1, "the order does not change between epochs"
        resumed = RankLocalSampler(ds, seed=5, rank=rank, world_size=WORLD)
        assert read_epoch(ds, resumed, 2) == epochs[2], "the order of an epoch is not a function of (seed, epoch)"
        seen |= set(epochs[0])
    assert seen == set(range(N))


def test_ranks_draw_different_orders_and_round_up_off_keeps_the_shards_as_they_are(zip_root):
    orders = []
    for rank in range(WORLD):
        ds = ImageNetZip(zip_root, "train", cache_mode="part", rank=rank, world_size=WORLD)
        exact = RankLocalSampler(ds, seed=0, rank=rank, world_size=WORLD, round_up=False)
        assert sorted(exact) == ds.cached_indices == list(range(rank, N, WORLD))
        orders.append([i // WORLD for i in RankLocalSampler(ds, seed=0, rank=rank, world_size=WORLD)])
    # positions within the shards of ranks 0 and 1 (both of 4): one permutation shared by the ranks would put
    # neighbouring images (one class in a sorted map file) into every rank's batch at once
    assert orders[0] != orders[1]


def test_unshuffled_ranks_interleave_back_to_the_dataset_order(zip_root):
    """mmengine's evaluator zips the ranks' results and keeps the first len(dataset): with shuffle=False this gives
    the dataset order, as with DefaultSampler(shuffle=False)."""
    parts = [list(RankLocalSampler(range(N), shuffle=False, seed=0, rank=r, world_size=WORLD)) for r in range(WORLD)]
    assert [i for group in zip(*parts) for i in group][:N] == list(range(N))


def test_a_global_sampler_misses_the_part_cache(zip_root, monkeypatch):
    """The defect RankLocalSampler fixes: DefaultSampler(shuffle=True) deals rank 1 indices that rank 1 did not
    cache."""
    ds = cache_only(zip_root, 1, monkeypatch)
    monkeypatch.setattr("mmengine.dataset.sampler.get_dist_info", lambda: (1, WORLD))
    with pytest.raises(AssertionError, match="not in this rank's cache"):
        read_epoch(ds, DefaultSampler(ds, shuffle=True, seed=5), 0)


def test_registry_defaults_and_errors(zip_root, monkeypatch):
    ds = ImageNetZip(zip_root, "train", cache_mode="part", rank=0, world_size=1)
    sampler = DATA_SAMPLERS.build(dict(type="RankLocalSampler"), default_args=dict(dataset=ds, seed=3))
    assert sorted(sampler) == list(range(N)) and list(sampler) != list(range(N))
    with pytest.raises(ValueError, match="rank 0/1 .* rank 1/3"):
        RankLocalSampler(ImageNetZip(zip_root, "train", cache_mode="part", rank=1, world_size=WORLD), seed=0)
    with pytest.raises(ValueError, match="4 samples .* 8 ranks"):
        RankLocalSampler(range(4), seed=0, rank=0, world_size=8)
    with pytest.raises(ValueError, match=r"rank 3 outside 0\.\.2"):
        ImageNetZip(zip_root, "train", cache_mode="part", rank=3, world_size=WORLD)


def test_the_zip_config_pairs_part_with_the_rank_local_sampler():
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification/deit-s_mixpro_8xb128-300e_in1k-zip.py"))
    assert cfg.train_dataloader.dataset.cache_mode == "part"
    assert cfg.train_dataloader.sampler == dict(type="RankLocalSampler", shuffle=True)
    check_cache_sampler(cfg)
    cfg.train_dataloader.sampler = dict(type="DefaultSampler", shuffle=True)
    with pytest.raises(ValueError, match="train_dataloader.*'DefaultSampler'.*RankLocalSampler"):
        check_cache_sampler(cfg)
    cfg.train_dataloader.dataset.cache_mode = "full"
    check_cache_sampler(cfg)


def test_tools_train_refuses_part_cache_with_a_global_sampler():
    """The check runs where every training and evaluation config is built (classification.engine.launch)."""
    from classification.engine.launch import prepare_config, prepare_test_config
    config = osp.join(ROOT, "configs/classification/deit-s_mixpro_8xb128-300e_in1k-zip.py")
    prepare_config(config)
    bad = {"train_dataloader.sampler.type": "DefaultSampler"}
    with pytest.raises(ValueError, match="train_dataloader.*RankLocalSampler"):
        prepare_config(config, cfg_options=bad)
    with pytest.raises(ValueError, match="train_dataloader.*RankLocalSampler"):
        prepare_test_config(config, __file__, cfg_options=bad)

"""Samplers (``DATA_SAMPLERS``).

:class:`RepeatAugSampler` is timm's DeiT repeated-augmentation sampler with mmengine's
calling convention (``dataset=``, ``seed=``; rank and world size from ``mmengine.dist.get_dist_info()``).
:class:`RankLocalSampler` shuffles within each rank's own shard, the one ImageNetZip caches
with ``cache_mode='part'``.

Importing this module (``classification.register_all`` does) registers both.
"""
from __future__ import annotations

from typing import Optional

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from timm.data.distributed_sampler import RepeatAugSampler as _TimmRepeatAugSampler
from torch.utils.data import Sampler

from classification.data.imagenet import rank_shard

__all__ = ["RepeatAugSampler", "RankLocalSampler"]


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

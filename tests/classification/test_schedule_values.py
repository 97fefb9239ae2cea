"""``--epochs N`` on the real ImageNet recipes, lr by lr (README, "Options of tools/train.py": the whole schedule
shortened to end at N, the warm-up keeps its length, the cosine ends at N).

The shortened config of :func:`classification.engine.launch.prepare_config` is stepped through mmengine's own
schedulers (built as the runner builds them: per iteration, ``convert_to_iter_based``), and every iteration's lr is
compared with the rule written out by hand from the config's unshortened numbers: a linear warm-up from
``start_factor · lr`` over the original warm-up epochs, then a cosine from ``lr`` to ``eta_min`` over the epochs left
up to N. A warm-up scaled with the schedule, a cosine that keeps its old ``T_max`` or end, or one that starts
elsewhere fails for every config here.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

import classification  # noqa: F401  (registration)
from classification.engine.launch import prepare_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS_PER_EPOCH = 40


def _lrs(cfg: Config, base_lr: float) -> list:
    """lr of every training iteration of ``cfg`` (max_epochs · ITERS_PER_EPOCH), stepping the schedulers as
    mmengine's ParamSchedulerHook does (after each iteration)."""
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=base_lr))
    schedulers = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(optimizer=wrapper, epoch_length=ITERS_PER_EPOCH))
                  for s in cfg.param_scheduler]
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs * ITERS_PER_EPOCH):
        lrs.append(wrapper.optimizer.param_groups[0]["lr"])
        for s in schedulers:
            s.step()
    return lrs


def hand_schedule(base_lr: float, start_factor: float, warmup_epochs: int, eta_min: float, epochs: int) -> list:
    """The documented rule, per iteration i: warm-up base·(f + (1−f)·i/(W − 1)) for i < W = warmup_epochs·E
    (mmengine's LinearLR reaches the full lr on its last iteration), then
    eta_min + (base − eta_min)·(1 + cos(π·(i − W)/T))/2 with T = (epochs − warmup_epochs)·E."""
    w, total = warmup_epochs * ITERS_PER_EPOCH, epochs * ITERS_PER_EPOCH
    out = []
    for i in range(total):
        if i < w:
            out.append(base_lr * (start_factor + (1 - start_factor) * i / (w - 1)))
        else:
            out.append(eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * (i - w) / (total - w))) / 2)
    return out


@pytest.mark.parametrize("config,epochs", [("deit-s_mixpro_8xb128-300e_in1k.py", 30),  # 20 of 300 warm-up epochs
                                           ("deit-s_mixpro_8xb128-300e_in1k.py", 21),
                                           ("cait-xxs36_mixpro_8xb128-400e_in1k.py", 12),  # 5 of 400
                                           ("pvt-s_mixpro_8xb128-300e_in1k.py", 8)])  # 5 of 300
def test_shortened_schedule_keeps_the_warm_up_and_ends_the_cosine_at_n(config, epochs, tmp_path):
    path = osp.join(ROOT, "configs/classification", config)
    original = Config.fromfile(path)
    warmup, cosine = original.param_scheduler
    assert warmup.type == "LinearLR" and cosine.type == "CosineAnnealingLR" and warmup.end < epochs
    cfg = prepare_config(path, epochs=epochs, work_dir=str(tmp_path))
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_cfg.val_interval == original.train_cfg.val_interval  # --epochs keeps the val interval
    base_lr = 1e-3
    got = _lrs(cfg, base_lr)
    expected = hand_schedule(base_lr, warmup.start_factor, warmup.end, cosine.eta_min, epochs)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):  # mmengine's recursive cosine drifts by ~1e-12
        assert a == pytest.approx(b, rel=1e-6), (config, epochs, i // ITERS_PER_EPOCH, i)
    w = warmup.end * ITERS_PER_EPOCH
    assert got[w - 1] == got[w] == pytest.approx(base_lr)  # the full lr ends the warm-up and starts the cosine


def test_a_length_shorter_than_the_warm_up_drops_the_cosine():
    """N at or below the warm-up's end: the cosine (which would start at or after N) is dropped."""
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification/deit-s_mixpro_8xb128-300e_in1k.py"))
    from classification.engine.launch import shorten_schedule

    shorten_schedule(cfg, 20)
    assert [s["type"] for s in cfg.param_scheduler] == ["LinearLR"]
    assert cfg.param_scheduler[0]["end"] == 20

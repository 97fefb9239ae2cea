"""``--epochs N`` on the real ImageNet recipes, lr by lr (README, "Options of tools/train.py": the whole schedule
shortened to end at N, the warm-up keeps its length, the cosine ends at N).

The shortened config of :func:`classification.engine.launch.prepare_config` is stepped through mmengine's own
schedulers (built as the runner builds them: per iteration, ``convert_to_iter_based``), and every iteration's lr is
compared with the rule written out by hand from the config's unshortened numbers: a linear warm-up from
``start_factor · lr`` over the original warm-up epochs, then a cosine from ``lr`` to ``eta_min`` over the epochs left
up to N. A warm-up scaled with the schedule, a cosine that keeps its old ``T_max`` or end, or one that starts
elsewhere fails for every config here.
"""
import glob
import logging
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

import classification.register_all  # noqa: F401  (registration)
from classification.engine.launch import prepare_config

from classification.foundation.host import ROOT
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


# docs/methods.md, "Recipes", and each schedule's comment: (warm-up start factor, warm-up epochs, cosine end epoch,
# epochs in all); the cosine ends at 1e-5 everywhere and the CCT recipes' 10 cool-down epochs stay at its last lr
SCHEDULE_BASES = {
    "adamw_300e_in1k": (1e-3, 20, 300, 300), "adamw_300e_in1k_swin": (1e-3, 20, 300, 300),
    "adamw_300e_in1k_transmix-deit": (1e-3, 20, 300, 300), "adamw_300e_in1k_transmix-deit-b": (1e-3, 5, 300, 300),
    "adamw_300e_in1k_mergemix": (1e-5, 5, 300, 300), "adamw_300e_in1k_pvt": (2e-3, 5, 300, 300),
    "adamw_300e_in1k_pvt-ml": (2e-3, 5, 300, 300), "adamw_400e_in1k": (1e-3, 5, 400, 400),
    "adamw_cct_cifar": (1e-6 / 6e-4, 10, 300, 310), "adamw_cct_cifar_1500e": (1e-6 / 6e-4, 10, 1500, 1510),
    "adamw_fmnist": (1e-2, 1, 20, 20),
}


def test_every_schedule_base_runs_its_documented_lr_rule():
    """The whole schedule of each base in configs/classification/_base_/schedules/, lr by lr, against the hand rule
    with the numbers above (a warm-up or cosine bound derived wrongly from the variables, or a cosine period other
    than its length, fails); a new schedule base without a pin fails too."""
    folder = osp.join(ROOT, "configs/classification/_base_/schedules")
    assert sorted(osp.basename(p)[:-3] for p in glob.glob(osp.join(folder, "*.py"))) == sorted(SCHEDULE_BASES)
    for name, (start_factor, warmup, cosine_end, epochs) in SCHEDULE_BASES.items():
        cfg = Config.fromfile(osp.join(folder, name + ".py"))
        assert cfg.train_cfg.max_epochs == epochs, name
        got = _lrs(cfg, 1e-3)
        expected = hand_schedule(1e-3, start_factor, warmup, 1e-5, cosine_end)
        expected += expected[-1:] * ((epochs - cosine_end) * ITERS_PER_EPOCH)  # cool-down: the cosine's last lr
        assert got == pytest.approx(expected, rel=1e-6), name


def test_a_length_shorter_than_the_warm_up_drops_the_cosine():
    """N at or below the warm-up's end: the cosine (which would start at or after N) is dropped."""
    cfg = Config.fromfile(osp.join(ROOT, "configs/classification/deit-s_mixpro_8xb128-300e_in1k.py"))
    from classification.engine.launch import shorten_schedule

    shorten_schedule(cfg, 20)
    assert [s["type"] for s in cfg.param_scheduler] == ["LinearLR"]
    assert cfg.param_scheduler[0]["end"] == 20


def _epoch_cfg(**train_cfg):
    return Config(dict(train_cfg=dict(by_epoch=True, max_epochs=300, val_interval=1, **train_cfg),
                       param_scheduler=[dict(type="LinearLR", by_epoch=True, begin=0, end=20),
                                        dict(type="CosineAnnealingLR", by_epoch=True, begin=20, end=300,
                                             T_max=280)]))


def test_epochs_is_refused_where_it_cannot_shorten_the_schedule():
    from classification.foundation.errors import UserError
    from classification.engine.launch import _schedule_length

    for bad in (0, -3, 2.5):
        with pytest.raises(UserError, match=rf"--epochs must be at least 1, got {bad!r}"):
            _schedule_length(_epoch_cfg(), bad, None)
    iters = Config(dict(train_cfg=dict(type="IterBasedTrainLoop", by_epoch=False, max_iters=80)),
                   cfg_text="# an iteration-based config", filename="seg.py")
    with pytest.raises(UserError, match=r"--epochs: seg.py trains by iterations \(train_cfg.max_iters\)"):
        _schedule_length(iters, 3, None)
    with pytest.raises(UserError, match="--epochs and --cfg-options train_cfg.max_epochs both set the length"):
        _schedule_length(_epoch_cfg(), 3, {"train_cfg.max_epochs": 3})
    cfg = _epoch_cfg()
    _schedule_length(cfg, 30, None)
    assert cfg.train_cfg.max_epochs == 30 and cfg.train_cfg.val_interval == 1
    assert [(s["begin"], s["end"], s.get("T_max")) for s in cfg.param_scheduler] == [(0, 20, None), (20, 30, None)]


def test_max_epochs_alone_warns_that_the_lr_schedule_runs_past_the_new_end(monkeypatch):
    from classification.engine import launch

    logged = []
    monkeypatch.setattr(launch, "print_log", lambda msg, **kw: logged.append((msg, kw.get("level"))))
    cfg = _epoch_cfg()
    cfg.train_cfg.max_epochs = 30
    launch._schedule_length(cfg, None, {"train_cfg.max_epochs": 30})
    assert len(logged) == 1 and logged[0][1] == logging.WARNING
    assert "train_cfg.max_epochs=30 shortens the run but not its lr schedule, which still ends at epoch 300" in \
        logged[0][0] and "use --epochs 30" in logged[0][0]
    for options, max_epochs in (({"train_cfg.max_epochs": 300}, 300), (None, 30)):  # schedule fits / not overridden
        logged.clear()
        cfg.train_cfg.max_epochs = max_epochs
        launch._schedule_length(cfg, None, options)
        assert logged == []


def _shortened(schedulers, epochs, original=300, **kw):
    from classification.engine.launch import shorten_schedule

    cfg = Config(dict(train_cfg=dict(by_epoch=True, max_epochs=original, val_interval=1),
                      param_scheduler=schedulers))
    shorten_schedule(cfg, epochs, **kw)
    return cfg


def test_shorten_schedule_rules_on_hand_made_schedules():
    """(survivors of make mutate on launch.py) the rule on the shapes configs take: a single scheduler dict,
    schedulers without ``by_epoch`` (mmengine's default: True) or ``begin`` (0), iteration-based ones (left alone),
    a dropped scheduler before a kept one, a longer N (the schedule then ends at N too), the default val interval.
    An explicit cosine ``T_max`` is dropped: mmengine's default, end − begin, follows the new end."""
    cos = dict(type="CosineAnnealingLR", begin=20, end=300)
    cfg = _shortened(dict(cos, by_epoch=True, T_max=280), 30)
    assert cfg.param_scheduler == [dict(cos, by_epoch=True, end=30)]
    assert cfg.train_cfg.max_epochs == 30 and cfg.train_cfg.val_interval == 30  # validation once, at the end
    assert _shortened([cos], 30, keep_val_interval=True).train_cfg.val_interval == 1
    assert _shortened([dict(type="ConstantLR", end=300)], 30).param_scheduler == [dict(type="ConstantLR", end=30)]
    no_begin = _shortened([dict(type="CosineAnnealingLR", end=300, T_max=300)], 30).param_scheduler
    assert no_begin == [dict(type="CosineAnnealingLR", end=30)]
    iters = dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end=1500, T_max=1200)  # left as it is
    assert _shortened([iters, cos], 30).param_scheduler == [iters, dict(cos, end=30)]
    warm = dict(type="LinearLR", begin=0, end=20)
    assert _shortened([cos, warm], 10).param_scheduler == [dict(warm, end=10)]  # the cosine dropped, not the rest
    assert _shortened([warm, cos], 400).param_scheduler == [warm, dict(cos, end=400)]
    assert _shortened([warm, dict(cos, end=250)], 400).param_scheduler == [warm, dict(cos, end=250)]


def test_schedule_length_accepts_one_epoch_and_epoch_loops_without_by_epoch():
    from classification.foundation.errors import UserError
    from classification.engine.launch import _schedule_length

    cfg = _epoch_cfg()
    _schedule_length(cfg, 1, None)
    assert cfg.train_cfg.max_epochs == 1
    plain = Config(dict(train_cfg=dict(max_epochs=300), param_scheduler=[]))  # by_epoch left to mmengine: True
    _schedule_length(plain, 5, None)
    assert plain.train_cfg.max_epochs == 5
    odd = Config(dict(train_cfg=dict(by_epoch=False, max_epochs=3)), cfg_text="#", filename="odd.py")
    with pytest.raises(UserError, match="--epochs: odd.py trains by iterations"):
        _schedule_length(odd, 2, None)
    with pytest.raises(UserError, match=r"^--epochs and --cfg-options train_cfg.max_epochs both set the length: use "
                                        r"--epochs, which also shortens the lr schedule$"):
        _schedule_length(_epoch_cfg(), 3, {"train_cfg.max_epochs": 3})


def test_the_max_epochs_warning_counts_epoch_schedulers_only(monkeypatch):
    from classification.engine import launch

    logged = []
    monkeypatch.setattr(launch, "print_log", lambda msg, **kw: logged.append((msg, kw)))
    for schedulers, warns in ((dict(type="ConstantLR", end=300), True),  # a single dict, by_epoch by default
                              ([dict(type="LinearLR", by_epoch=False, begin=0, end=1500)], False),  # iterations
                              ([dict(type="LinearLR", end=20)], False)):
        logged.clear()
        cfg = Config(dict(train_cfg=dict(by_epoch=True, max_epochs=30), param_scheduler=schedulers))
        launch._schedule_length(cfg, None, {"train_cfg.max_epochs": 30})
        assert len(logged) == warns, schedulers
        if warns:
            assert logged[0][1] == dict(logger="current", level=logging.WARNING)

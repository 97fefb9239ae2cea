"""Config checks before anything is built (classification.engine.config_check, classification.engine.launch):
--cfg-options keys that mmengine would merge without effect, wrong loop / optimiser values, missing datasets, --epochs
and the warning when train_cfg.max_epochs alone is overridden, metrics as plain numbers."""
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from classification.engine import launch
from classification.engine.config_check import check_data_roots, check_training_options, load_config
from classification.foundation.errors import MissingPathError, UserError

from classification.foundation.host import ROOT
CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")
SEG_CONFIG = osp.join(ROOT, "configs/segmentation/segmenter-mask_tiny-vit_scratch_1xb16-500i_composite-64.py")
FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("option,message", [
    ("trian_cfg.max_epochs", r"trian_cfg\.max_epochs=1: the config has no key 'trian_cfg'; did you mean 'train_cfg'\?"),
    ("train_cfg.max_epoch", r"'train_cfg' is built into EpochBasedTrainLoop, which takes no option 'max_epoch'; did "
                            r"you mean 'max_epochs'\?"),
    ("optim_wrapper.optimizer.betas2", r"'optim_wrapper\.optimizer' is built into AdamW, which takes no option "
                                       r"'betas2'; did you mean 'betas'\?"),
    ("model.backbone.drop_path", r"built into tiny_vit, which takes no option 'drop_path'; did you mean "
                                 r"'drop_path_rate'\?"),
    ("model.mix.0.alhpa", r"'model\.mix\.0' is built into maskmix, which takes no option 'alhpa'"),
    ("model.mix.3.alpha", r"'model\.mix' is a list of 3 entries; '3' is not one of its indices"),
    ("default_hooks.chekpoint.interval", r"'default_hooks' has no key 'chekpoint' and nothing would read a new one"),
    ("max_epochs", r"'max_epochs' is a variable of the config file, already substituted"),
])
def test_unknown_cfg_options_keys_are_refused_before_anything_is_built(option, message):
    with pytest.raises(UserError, match=message):
        load_config(CONFIG, {option: 1})


@pytest.mark.parametrize("option", ["train_cfg.max_epochs", "model.grad_checkpointing",
                                    "optim_wrapper.accumulative_counts", "env_cfg.num_threads",
                                    "train_dataloader.prefetch_factor", "param_scheduler.1.last_step",
                                    "default_hooks.checkpoint.priority", "randomness.diff_rank_seed",
                                    "model.mix.0.alpha", "load_from_partial", "visualizer"])
def test_new_keys_that_something_reads_are_accepted(option):
    cfg = load_config(CONFIG, {option: 2})
    node = cfg
    for part in option.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert node == 2


def test_downstream_configs_check_against_their_scope():
    cfg = load_config(SEG_CONFIG, {"model.backbone.with_cp": True})  # mmseg's VisionTransformer (our strict subclass) takes it
    assert cfg.model.backbone.with_cp is True
    with pytest.raises(UserError, match="'model.backbone' is built into StrictVisionTransformer, which takes no option "
                                        "'num_layer'; did you mean 'num_layers'"):
        load_config(SEG_CONFIG, {"model.backbone.num_layer": 1})
    # a constructor taking **kwargs (mmseg's decode heads pass them on) may read any key: not refused
    assert load_config(SEG_CONFIG, {"model.decode_head.dropout_ratio": 0.0}).model.decode_head.dropout_ratio == 0.0


def test_loop_and_optimiser_values_are_checked():
    for value in ("abc", 1.5):  # not the type of the value they replace: refused when merged
        with pytest.raises(UserError, match=rf"train_cfg\.max_epochs={value!r}: expected an integer, like the value "
                                            rf"it replaces \(20\)"):
            load_config(CONFIG, {"train_cfg.max_epochs": value})
    cfg = load_config(CONFIG, {"train_cfg.max_epochs": 0})
    with pytest.raises(UserError, match=r"train_cfg\.max_epochs=0: must be an integer of at least 1"):
        check_training_options(cfg)
    with pytest.raises(UserError, match=r"optim_wrapper\.optimizer=.*Invalid learning rate: -1"):
        check_training_options(load_config(CONFIG, {"optim_wrapper.optimizer.lr": -1}))
    with pytest.raises(UserError, match=r"optim_wrapper\.optimizer=.*is not in the .*optimizer registry"):
        check_training_options(load_config(CONFIG, {"optim_wrapper.optimizer.type": "AdamWW"}))
    check_training_options(load_config(CONFIG))


def test_missing_dataset_roots_are_named():
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type="ConcatDataset", datasets=[
        dict(type="ImageNetFolder", root=ROOT), dict(type="ImageNetFolder", root="/nowhere/imagenet")]))))
    with pytest.raises(MissingPathError, match=r"train_dataloader\.dataset\.datasets\.1\.root: dataset folder "
                                               r"/nowhere/imagenet does not exist"):
        check_data_roots(cfg, ["train_dataloader"])
    check_data_roots(cfg, ["val_dataloader"])  # a loader the run does not use is not checked


def train_config(tmp_path, **options):
    return launch.prepare_config(CONFIG, work_dir=str(tmp_path), **options)


@pytest.mark.needs_data(FMNIST)
def test_epochs_shortens_the_whole_schedule(tmp_path):
    cfg = train_config(tmp_path, epochs=3)
    warmup, cosine = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 5  # validated after the last epoch too
    assert (warmup["begin"], warmup["end"]) == (0, 1) and (cosine["begin"], cosine["end"]) == (1, 3)
    assert "T_max" not in cosine  # mmengine's default: end − begin
    one = train_config(tmp_path, epochs=1)
    assert [s["type"] for s in one.param_scheduler] == ["LinearLR"]
    with pytest.raises(UserError, match="--epochs and --cfg-options train_cfg.max_epochs both set the length"):
        train_config(tmp_path, epochs=2, cfg_options={"train_cfg.max_epochs": 2})
    with pytest.raises(UserError, match=r"--epochs: .* trains by iterations \(train_cfg\.max_iters\)"):
        launch.prepare_config(SEG_CONFIG, epochs=2)


@pytest.mark.needs_data(FMNIST)
def test_overriding_max_epochs_alone_warns_that_the_schedule_is_unchanged(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(launch, "print_log", lambda msg, logger=None, level=None: logged.append((level, msg)))
    cfg = train_config(tmp_path, cfg_options={"train_cfg.max_epochs": 1})
    assert cfg.train_cfg.max_epochs == 1 and cfg.param_scheduler[-1]["end"] == 20
    assert logged == [(logging.WARNING, "train_cfg.max_epochs=1 shortens the run but not its lr schedule, which still "
                                        "ends at epoch 20 (the run stops part-way through it); use --epochs 1 to "
                                        "shorten the whole schedule")]
    train_config(tmp_path, epochs=1)
    train_config(tmp_path, cfg_options={"train_cfg.max_epochs": 25})  # longer than the schedule: nothing to say
    assert len(logged) == 1


@pytest.mark.needs_data(FMNIST)
def test_partial_loading_needs_load_from_and_is_refused_for_a_resume(tmp_path):
    ckpt = tmp_path / "pretrained.pth"
    torch.save({"state_dict": {}}, ckpt)
    cfg = train_config(tmp_path, partial_load=["backbone.head"], cfg_options={"load_from": str(ckpt)})
    assert cfg.load_from_partial == ["backbone.head"] and not cfg.resume
    with pytest.raises(UserError, match="without load_from"):
        train_config(tmp_path, partial_load=["backbone.head"])
    with pytest.raises(UserError, match="a resume restores a run exactly"):
        train_config(tmp_path, partial_load=["backbone.head"], resume=str(ckpt))
    with pytest.raises(MissingPathError, match="load_from checkpoint not found: .*nothing.pth"):
        train_config(tmp_path, cfg_options={"load_from": str(tmp_path / "nothing.pth")})


def test_metrics_are_plain_numbers(tmp_path):
    metrics = launch.plain_metrics({"mIoU": np.float32(83.95), "aAcc": np.float64(1 / 3), "n": np.int64(7),
                                    "top1": torch.tensor(12.5), "name": "x"})
    assert metrics == {"mIoU": 83.95, "aAcc": 0.3333, "n": 7, "top1": 12.5, "name": "x"}
    assert repr(metrics["mIoU"]) == "83.95" and type(metrics["n"]) is int
    path = launch.write_metrics(str(tmp_path), "cfg.py", "ckpt.pth", metrics)
    assert path == str(tmp_path / "metrics.json")
    assert (tmp_path / "metrics.json").read_text().count('"mIoU": 83.95') == 1


def test_the_engine_asks_a_config_type_through_its_class_hooks(tmp_path):
    """type_hook finds a class-level hook from a registered name or from the class itself (None for a type without
    it, an unknown name, no type); the class-count check reaches the dataset and the metric through it whichever way
    the config names them."""
    import classification.register_all  # noqa: F401  (the engine imports none of these classes)
    from mmengine.registry import DATASETS, METRICS, MODELS
    from classification.data.imagenet import ImageNetFolder, ImageNetZip
    from classification.engine.config_check import check_class_counts, type_hook
    from classification.evaluation.accuracy import TopKAccuracy
    from classification.models.mix_classifier import MixClassifier
    assert type_hook(MODELS, dict(type="MixClassifier"), "check_training_config") == MixClassifier.check_training_config
    assert type_hook(DATASETS, dict(type=ImageNetZip), "check_loader_config") == ImageNetZip.check_loader_config
    assert type_hook(DATASETS, dict(type="ImageNetZip"), "config_class_count") is None
    for node in (dict(type="NoSuchType"), dict(type="tiny_vit"), dict(), None):  # tiny_vit: a registered function
        assert type_hook(MODELS, node, "check_training_config") is None
    for name in ("a", "b", "c"):
        (tmp_path / "train" / name).mkdir(parents=True)
    (tmp_path / "train" / "notes.txt").write_text("")  # a file is not a class
    assert ImageNetFolder.config_class_count(dict(root=str(tmp_path))) == 3
    assert ImageNetFolder.config_class_count(dict(root=str(tmp_path), split="val")) is None
    label_maps = dict(type="ImageNetLabelMaps", root=str(tmp_path))  # reads the same class folders
    assert type_hook(DATASETS, label_maps, "config_class_count")(label_maps) == 3
    for dataset, metric in (("ImageNetFolder", "TopKAccuracy"), (ImageNetFolder, TopKAccuracy)):
        cfg = Config(dict(model=dict(num_classes=2), train_dataloader=dict(dataset=dict(type=dataset,
                                                                                        root=str(tmp_path)))))
        with pytest.raises(UserError, match=r"train_dataloader\.dataset: .*train holds 3 class folders but the model "
                                            r"has num_classes=2: set model\.num_classes=3"):
            check_class_counts(cfg, ("train_dataloader",), ())
        cfg.model.num_classes = 3
        cfg.val_evaluator = [dict(type=metric, topk=(1,)), dict(type=metric, topk=(1, 3))]
        with pytest.raises(UserError, match=r"val_evaluator\.1\.topk=\(1, 3\): top-3 of 3 classes counts every "
                                            r"prediction as a hit"):
            check_class_counts(cfg, ("train_dataloader",), ("val_evaluator",))
        cfg.val_evaluator = dict(type=metric)  # TopKAccuracy's default (1, 5)
        with pytest.raises(UserError, match=r"val_evaluator\.topk=\(1, 5\): top-5 of 3"):
            check_class_counts(cfg, ("train_dataloader",), ("val_evaluator",))
        cfg.val_evaluator = dict(type=metric, topk=2)
        check_class_counts(cfg, ("train_dataloader",), ("val_evaluator",))

"""Segmentation configs: every config parses, one model per family builds, and the composite-data Segmenter trains,
loads a converted classification checkpoint without key mismatches, and evaluates mIoU."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs/segmentation/segmenter*.py")))  # UPerNet: test_msmlp.py


def _config(path: str) -> Config:
    """The config at ``path`` through the plan's memoised loader (mmengine's own re-reads every mmseg metafile for
    each ``mmseg::`` base, about 3 s per config)."""
    from classification.experiments.reproduction.paper_plan import plan_config
    return plan_config(osp.relpath(path, ROOT), "test")


def two_iterations_on(data_root) -> list:
    """--cfg-options for a composite-data Segmenter: ``data_root``, batch 2, no loader workers, 2 iterations."""
    return [f"train_dataloader.dataset.data_root={data_root}", f"val_dataloader.dataset.data_root={data_root}",
            "train_dataloader.batch_size=2", "train_dataloader.num_workers=0",
            "train_dataloader.persistent_workers=False", "val_dataloader.num_workers=0",
            "val_dataloader.persistent_workers=False", "train_cfg.max_iters=2", "train_cfg.val_interval=2"]


def _family(name: str) -> str:
    return next(f for f in ("ade20k", "pascal-context-59", "pascal-context-480x480") if f in name)


@pytest.mark.parametrize("path", CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_parses_with_the_recipe(path):
    cfg = _config(path)
    name = osp.basename(path)
    model = cfg.model.module if cfg.model.type == "SegTTAModel" else cfg.model
    if "composite" in name:
        assert model.decode_head.num_classes == 11
        return
    assert cfg.optim_wrapper.optimizer == dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=0.0)
    assert cfg.param_scheduler[0].eta_min == 1e-5 and cfg.param_scheduler[0].power == 0.9
    assert model.backbone.drop_path_rate == 0.1 and model.backbone.patch_bias
    assert model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    # ADE20K and Pascal Context 59 (extras): mmseg's Segmenter recipe; Pascal Context 60 (Table 2): Segmenter's own
    size, stride, classes = {"ade20k": (512, 512, 150), "pascal-context-59": (480, 480, 59),
                             "pascal-context-480x480": (480, 320, 60)}[_family(name)]
    assert model.test_cfg == dict(mode="slide", crop_size=(size, size), stride=(stride, stride))
    assert model.decode_head.num_classes == classes
    if "_mask_" in name or name.startswith("segmenter-mask"):
        assert model.decode_head.num_layers == 2
        if classes == 60:  # Segmenter's mask decoder: dropout 0.1, no drop path
            head = model.decode_head
            assert (head.drop_rate, head.attn_drop_rate, head.drop_path_rate) == (0.1, 0.1, 0.0)
    method = name.split("_")[2]
    assert model.backbone.type == "StrictVisionTransformer"
    converted_for = "" if "ade20k" in name else "-480"  # converted with --img-size 512 / 480: one file per size
    assert model.backbone.init_cfg.checkpoint.endswith(f"_{method}_8xb128-300e_in1k_mmseg-vit{converted_for}.pth")
    if name.endswith("_ms.py"):
        assert cfg.test_dataloader.dataset.pipeline[1].type == "TestTimeAug"
    if _family(name) == "ade20k" or "59" in _family(name):  # the extras say so in their first line
        assert open(path).readline().startswith("# Extra, not the paper's table")


def test_pascal_context_tables_follow_segmenters_scales_and_the_reference_row_is_mmsegs_config():
    """Segmenter's Pascal Context scales: training short side 520 × [0.5, 2], test short side 520, multi-scale
    ratios 0.5–1.75 of it with images below the 480 window upsampled to a short side of 480 (Segmenter's inference);
    the reference row is mmseg's DeepLabv3+ R-101 40k config (its published 47.30 / 48.47)."""
    stem = "configs/segmentation/segmenter-linear_deit-s_baseline_8xb2-80k_pascal-context-480x480"
    cfg = _config(osp.join(ROOT, stem + ".py"))
    resize = cfg.train_dataloader.dataset.pipeline[2]
    assert (resize.type, resize.scale, resize.ratio_range, resize.keep_ratio) == ("RandomResize", (4160, 520),
                                                                                  (0.5, 2.0), True)
    assert cfg.test_dataloader.dataset.pipeline[1] == dict(type="Resize", scale=(4160, 520), keep_ratio=True)
    assert cfg.train_dataloader.dataset.type == "PascalContextDataset" and cfg.train_dataloader.batch_size == 2
    ms = _config(osp.join(ROOT, stem + "_ms.py")).test_dataloader.dataset.pipeline[1].transforms
    shorts = []
    for t in ms[0]:  # the short side each view ends with
        steps = t.transforms if t.type == "Compose" else [t]
        shorts.append(max(min(s.scale) for s in steps))
    assert shorts == [max(480, int(520 * r)) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert [t.prob for t in ms[1]] == [0.0, 1.0]
    ref = _config(osp.join(ROOT, "configs/segmentation",
                           "deeplabv3plus_r101-d8_4xb4-40k_pascal-context-480x480.py"))
    assert ref.model.backbone.depth == 101 and ref.model.decode_head.num_classes == 60
    assert ref.train_dataloader.dataset.type == "PascalContextDataset" and ref.train_cfg.max_iters == 40000
    assert ref.train_dataloader.batch_size * 4 == 16 and ref.optim_wrapper.optimizer.lr == 0.004


FAMILIES = [p for p in CONFIGS if "_baseline_" in p and not p.endswith("_ms.py")]


@pytest.mark.parametrize("path", FAMILIES, ids=[osp.basename(p) for p in FAMILIES])
def test_one_model_per_family_builds_and_segments(path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import segmentation  # noqa: F401
    cfg = _config(path)
    init_default_scope("mmseg")
    cfg.model.backbone.init_cfg = None
    small = 32  # a forward at a small size is enough to check the wiring (pos_embed is resized by mmseg)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, small, small), mode="tensor")
    assert out.shape == (1, cfg.model.decode_head.num_classes, small // 16, small // 16)


@pytest.mark.slow
def test_composite_segmenter_trains_from_converted_checkpoint(tmp_path):
    from classification.models.vits import tiny_vit
    from classification.transfer.downstream_data.composite import make_composite
    make_composite(str(tmp_path / "composite"), num_train=8, num_val=2, size=128, seed=1, verbose=False)
    src = tmp_path / "cls.pth"
    classifier = tiny_vit(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in classifier.state_dict().items()}}, src)
    ckpt = tmp_path / "mmseg.pth"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "tools/convert_checkpoint.py", str(src), str(ckpt), "--to", "mmseg-vit",
                    "--img-size", "128", "128"],  # the backbone's img_size: it loads strictly
                   cwd=ROOT, env=env, check=True, capture_output=True)
    config = osp.join(ROOT, "configs/segmentation/segmenter-mask_tiny-vit_fmnist-mixpro_1xb8-2k_composite-128.py")
    proc = subprocess.run(
        [sys.executable, "tools/train.py", config, "--work-dir", str(tmp_path / "work"), "--cfg-options",
         f"model.backbone.init_cfg.checkpoint={ckpt}", *two_iterations_on(tmp_path / "composite")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "mIoU" in log
    assert "do not match exactly" not in log, "converted checkpoint did not load cleanly"
    assert f"Load checkpoint from {ckpt}" in log or str(ckpt) in log


@pytest.mark.slow
def test_segmenter_dist_train_two_gloo_processes(tmp_path):
    import random
    from classification.transfer.downstream_data.composite import make_composite
    make_composite(str(tmp_path / "composite"), num_train=8, num_val=2, size=128, seed=2, verbose=False)
    config = osp.join(ROOT, "configs/segmentation/segmenter-linear_tiny-vit_scratch_1xb8-2k_composite-128.py")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", PORT=str(random.randint(20000, 40000)))
    proc = subprocess.run(
        ["bash", "tools/dist_train.sh", config, "2", "--work-dir", str(tmp_path / "work"), "--cfg-options",
         *two_iterations_on(tmp_path / "composite")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "× 2 process(es)" in log and "mIoU" in log


@pytest.mark.slow
def test_multi_scale_flip_test_config_runs(tmp_path):
    """An `_ms` config through tools/test.py: mmseg's SegTTAModel over 6 scales × 2 flips, fed a plain (non-TTA)
    checkpoint, gives mIoU on ADE20K-style folders (the composite set, read with ADE20K's reduce_zero_label)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from classification.transfer.downstream_data.composite import make_composite
    import segmentation  # noqa: F401
    make_composite(str(tmp_path / "composite"), num_train=0, num_val=2, size=128, seed=4, verbose=False)
    ms = osp.join(ROOT, "configs/segmentation/segmenter-mask_deit-t_baseline_8xb1-160k_ade20k-512x512_ms.py")
    cfg = Config.fromfile(ms)
    assert cfg.model.type == "SegTTAModel"
    tta = cfg.test_dataloader.dataset.pipeline[1]
    assert tta.type == "TestTimeAug" and len(tta.transforms[0]) == 6 and len(tta.transforms[1]) == 2
    plain = Config.fromfile(ms.replace("_ms.py", ".py")).model
    plain.backbone.init_cfg = None
    init_default_scope("mmseg")
    ckpt = tmp_path / "plain.pth"
    torch.save({"state_dict": MODELS.build(plain).state_dict()}, ckpt)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "tools/test.py", ms, str(ckpt), "--work-dir", str(tmp_path / "work"), "--cfg-options",
         f"test_dataloader.dataset.data_root={tmp_path}/composite", "test_dataloader.num_workers=0",
         "test_dataloader.persistent_workers=False"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "mIoU" in log and "Iter(test) [2/2]" in log, log[-3000:]
    assert "unexpected key" not in log and "missing keys" not in log, log[-3000:]


@pytest.mark.slow
def test_seeded_segmenter_runs_repeat_exactly(tmp_path):
    """Every segmentation config inherits a seed (configs/segmentation/_base_/default_runtime.py): the same command
    twice gives bit-identical weights and mIoU; ``randomness.seed=1`` gives another run."""
    from classification.transfer.downstream_data.composite import make_composite
    make_composite(str(tmp_path / "composite"), num_train=8, num_val=2, size=128, seed=3, verbose=False)
    config = osp.join(ROOT, "configs/segmentation/segmenter-linear_tiny-vit_scratch_1xb8-2k_composite-128.py")
    assert Config.fromfile(config).randomness.seed == 0
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")

    def run(name, *extra):
        work = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "tools/train.py", config, "--work-dir", str(work), "--cfg-options",
             *two_iterations_on(tmp_path / "composite"), "train_cfg.max_iters=3", "train_cfg.val_interval=3", *extra],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        (ckpt,) = glob.glob(str(work / "iter_3.pth"))
        weights = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
        scalars = glob.glob(str(work / "*/vis_data/scalars.json"))
        metrics = [json.loads(line) for line in open(scalars[0]) if "mIoU" in line]
        return weights, [(m["aAcc"], m["mIoU"], m["mAcc"]) for m in metrics]

    first, again, other = run("a"), run("b"), run("c", "randomness.seed=1")
    assert first[0].keys() == again[0].keys()
    assert all(torch.equal(first[0][k], again[0][k]) for k in first[0])
    assert first[1] and first[1] == again[1]
    assert any(not torch.equal(first[0][k], other[0][k]) for k in first[0])

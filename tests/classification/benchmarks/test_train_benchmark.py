"""``tools/benchmark.py train --quick`` end to end, the synthetic ImageNet folder, the worker-count default, the
backbone compile of ``--compile`` and the Pillow ≥ 13 posterize fix."""
import json
import os

import pytest
import torch
from mmengine.config import Config
from PIL import Image
from timm.data import auto_augment

import classification.register_all  # noqa: F401  (registration)
from classification.benchmarks.micro import main as benchmark_main
from classification.data.synthetic_imagenet import make_synthetic_imagenet, synthetic_image
from classification.data.augment_compat import patch_posterize, posterize_zero_bits_black
from classification.data.transforms import build_transform
from classification.engine import launch
from classification.engine.compile_hook import compile_backbone
from classification.foundation.host import apply_default_num_workers, default_num_workers


def test_quick_train_benchmark_reports_every_pipeline(tmp_path):
    out = tmp_path / "train.json"
    result = benchmark_main(["train", "--quick", "--data-root", str(tmp_path / "data"), "--json", str(out)])
    stats = result["data"]["stats"]
    names = sorted(stats)
    dali = ["(b) ours deit-t_baseline_8xb128-300e_in1k + DALI w0"] if result["data"]["dali"] == "ran" else []
    assert names == sorted(["data: ours (loader + device preprocessor) w0", "data: timm (loader + prefetcher) w0",
                            "(a) ours deit-t_baseline_8xb128-300e_in1k w0", "(c) timm deit_tiny_patch16_224 w0"]
                           + dali)
    for st in stats.values():
        assert "error" not in st and st["img_per_s"] > 0 and st["img_per_s"] == pytest.approx(8 / st["s_per_iter"])
        assert 0 <= st["data_wait_share"] <= 1
    timm_step = stats["(c) timm deit_tiny_patch16_224 w0"]["img_per_s"]
    ours = stats["(a) ours deit-t_baseline_8xb128-300e_in1k w0"]
    assert ours["ratio_to_timm"] == pytest.approx(ours["img_per_s"] / timm_step)
    assert result["data"]["dataset"]["images"] == 64 and result["data"]["dataset"]["made"]
    assert len(list((tmp_path / "data" / "train").rglob("*.JPEG"))) == 64
    cost = result["data"]["worker_cost"]
    assert cost["uint8"]["bytes_per_image"] * 4 == cost["float"]["bytes_per_image"] == 3 * 64 * 64 * 4
    assert json.loads(out.read_text())["data"]["stats"].keys() == stats.keys()
    if result["data"]["dali"] != "ran":
        assert "skipped" in result["data"]["dali"]


def test_synthetic_folder_is_deterministic_and_reused(tmp_path):
    assert make_synthetic_imagenet(str(tmp_path / "a"), 2, 3, 1, min_side=40, max_side=60, processes=1)
    assert not make_synthetic_imagenet(str(tmp_path / "a"), 2, 3, 1, min_side=40, max_side=60)  # reused
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.JPEG"))
    assert [str(p) for p in files] == [f"train/n0000000{c}/{i}.JPEG" for c in range(2) for i in range(3)] + \
        [f"val/n0000000{c}/0.JPEG" for c in range(2)]
    with Image.open(tmp_path / "a" / "train" / "n00000001" / "2.JPEG") as im:
        assert 40 <= min(im.size) and max(im.size) <= 60
        assert im.size == synthetic_image("train/1/2", 40, 60).size  # image i of class c is drawn from its name
    assert synthetic_image("train/1/2", 40, 60).tobytes() == synthetic_image("train/1/2", 40, 60).tobytes()
    assert synthetic_image("train/1/2", 40, 60).tobytes() != synthetic_image("train/1/1", 40, 60).tobytes()
    with pytest.raises(ValueError, match="'train_per_class': 3.*not .*'train_per_class': 4"):  # other parameters: refused, nothing overwritten
        make_synthetic_imagenet(str(tmp_path / "a"), 2, 4, 1, min_side=40, max_side=60)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="not a synthetic ImageNet folder"):
        make_synthetic_imagenet(str(tmp_path / "b"), 2, 1, 0)


def test_worker_default_leaves_two_cores():
    assert default_num_workers(8, cores=16) == 8
    assert default_num_workers(16, cores=16) == 14
    assert default_num_workers(8, cores=2) == 1
    assert default_num_workers(0, cores=16) == 0
    assert default_num_workers(12, cores=64, local_processes=8) == 6
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        default_num_workers(-1)
    cfg = Config(dict(train_dataloader=dict(num_workers=16, persistent_workers=True),
                      val_dataloader=dict(num_workers=2), test_dataloader=None))
    assert apply_default_num_workers(cfg, cores=16) == {"train_dataloader": (16, 14)}
    assert cfg.train_dataloader.num_workers == 14 and cfg.val_dataloader.num_workers == 2


def test_launch_applies_worker_default_and_compile(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    config = "configs/classification/deit-t_baseline_8xb128-300e_in1k.py"
    cfg = launch.prepare_config(config, work_dir=str(tmp_path), compile=True)
    assert cfg.train_dataloader.num_workers == 2 and cfg.val_dataloader.num_workers == 2  # 8 configured, 4 cores
    assert dict(type="CompileBackboneHook") in cfg.custom_hooks
    plain = launch.prepare_config(config, work_dir=str(tmp_path))
    assert all(h.get("type") != "CompileBackboneHook" for h in plain.custom_hooks)


def test_compile_backbone_keeps_names_and_values():
    from mmengine.registry import MODELS
    cfg = Config.fromfile("configs/classification/deit-t_mixpro_8xb128-300e_in1k.py")
    cfg.model.update(num_classes=4)
    cfg.model.backbone.update(img_size=32, depth=2, drop_path_rate=0.0)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    x = torch.randn(2, 3, 32, 32)
    names = list(model.state_dict())
    with torch.no_grad():
        expected = model(x)
        compile_backbone(model, backend="eager")
        got = model(x)
    assert list(model.state_dict()) == names  # checkpoints keep their keys
    torch.testing.assert_close(got, expected)
    assert model.backbone._compiled_call_impl is not None
    with pytest.raises(ValueError, match="has none"):
        compile_backbone(torch.nn.Linear(2, 2))


def test_zero_bit_posterize_gives_black_and_transforms_are_patched():
    img = Image.new("RGB", (8, 8), (200, 100, 50))
    assert posterize_zero_bits_black(img, 0).getextrema() == ((0, 0), (0, 0), (0, 0))
    assert posterize_zero_bits_black(img, 1).getextrema() == ((128, 128), (0, 0), (0, 0))
    transform = build_transform(is_train=True, input_size=32)
    ops = [op for t in transform.transforms for op in getattr(t, "ops", [])]
    posterize_ops = [op for op in ops if op.name.startswith("Posterize")]
    assert posterize_ops and all(op.aug_fn is posterize_zero_bits_black for op in posterize_ops)
    assert not any(op.aug_fn is auto_augment.posterize for op in ops)
    assert patch_posterize(None) is None

"""Reliability: corrupt images, non-finite losses, AMP skipped steps, resumable mixing, config errors, kill -9 and
resume, a corrupt file in one of two gloo ranks."""
import io
import os
import os.path as osp
import random
import signal
import subprocess
import time
import warnings
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import MODELS
from PIL import Image
from torch.utils.data import DataLoader

import classification.register_all  # noqa: F401  (registration)
from classification.data.imagenet import CorruptImageError, ImageNetFolder, ImageNetZip
from classification.foundation.checkpoints import load_checkpoint_file
from classification.engine.config_check import validate_training_config
from classification.engine.hooks import AmpSkippedStepsHook
from classification.engine.optim_wrapper import GuardedOptimWrapper

from classification.foundation.host import ROOT
FMNIST_CONFIG = osp.join(ROOT, "configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py")


def write_jpeg(path, seed, size=32):
    rgb = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, format="JPEG")


@pytest.fixture
def folder_with_corrupt_file(tmp_path):
    """train/{a,b}/ with 4 JPEGs each; b/3.jpg is a truncated JPEG."""
    for c, cls in enumerate("ab"):
        os.makedirs(tmp_path / "train" / cls)
        for i in range(4):
            write_jpeg(tmp_path / "train" / cls / f"{i}.jpg", seed=10 * c + i)
    bad = tmp_path / "train" / "b" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    return tmp_path, str(bad)


# ------------------------------------------------------------------------------------------------ corrupt data
def test_corrupt_jpeg_raises_naming_the_file(folder_with_corrupt_file):
    root, bad = folder_with_corrupt_file
    ds = ImageNetFolder(str(root), "train")
    with pytest.raises(CorruptImageError, match=bad):
        ds[7]
    assert ds[0]["inputs"].shape == (3, 32, 32)


def test_skip_corrupt_warns_substitutes_and_counts_across_workers(folder_with_corrupt_file):
    root, bad = folder_with_corrupt_file
    ds = ImageNetFolder(str(root), "train", skip_corrupt=True)
    with pytest.warns(UserWarning, match="3.jpg"):
        item = ds[7]
    assert item["data_samples"] == 0  # the next sample (wrapping round) replaced it
    assert ds.pop_skipped() == 1 and ds.pop_skipped() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork"))
    assert sum(len(b["data_samples"]) for b in batches) == 8
    assert ds.pop_skipped() == 1, "the workers' skips reach the main process"


def test_zip_member_that_does_not_decode_names_zip_and_member(tmp_path):
    with zipfile.ZipFile(tmp_path / "train.zip", "w") as zf:
        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="JPEG")
        zf.writestr("train/a/good.jpg", buf.getvalue())
        zf.writestr("train/a/bad.jpg", b"not a jpeg at all")
    (tmp_path / "train_map.txt").write_text("a/good.jpg 0\na/bad.jpg 1\n")
    ds = ImageNetZip(str(tmp_path), "train")
    with pytest.raises(CorruptImageError, match=r"train\.zip:train/a/bad\.jpg"):
        ds[1]


# ------------------------------------------------------------------------------------------------ numerics
def tiny_classifier(mix=None):
    mix = mix or [dict(type="maskmix", prob=0.5), dict(type="cutmix", prob=0.25), dict(type="mixup", prob=0.25)]
    return MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_size=7),
                             mix_defaults=dict(mask_size=7), mix=mix, label_policy=dict(type="PALLabels")))


def test_non_finite_loss_stops_before_the_optimizer_step():
    model = tiny_classifier()
    wrapper = GuardedOptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    wrapper.load_state_dict({**wrapper.state_dict(), "guarded_updates": 41})  # a run resumed after 41 iterations
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.full((4, 1, 28, 28), float("nan"))
    with pytest.raises(FloatingPointError, match="iteration 42"):
        model.train_step(dict(inputs=x, data_samples=torch.arange(4)), wrapper)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k != "mix_step"), "weights changed"
    log = model.train_step(dict(inputs=torch.randn(4, 1, 28, 28), data_samples=torch.arange(4)), wrapper)
    assert torch.isfinite(log["loss"].detach())


def test_amp_skipped_steps_are_counted_not_failures():
    scales = iter([1024.0, 512.0, 512.0, 512.0])  # the first step is skipped (scale halves), the second is not
    scaler = SimpleNamespace(get_scale=lambda: next(scales))
    hub = MessageHub.get_instance("amp-test")
    runner = SimpleNamespace(optim_wrapper=SimpleNamespace(loss_scaler=scaler), message_hub=hub)
    hook = AmpSkippedStepsHook()
    for i in range(2):
        hook.before_train_iter(runner, i)
        hook.after_train_iter(runner, i)
    assert hook.skipped == 1 and hub.get_scalar("train/amp_skipped_steps").current() == 1
    plain = SimpleNamespace(optim_wrapper=SimpleNamespace(), message_hub=hub)
    hook.before_train_iter(plain, 0)
    hook.after_train_iter(plain, 0)
    assert hook.skipped == 1


def test_mixing_is_a_function_of_the_step():
    model = tiny_classifier([dict(type="maskmix", prob=1.0)])
    x = torch.randn(8, 1, 28, 28)
    masks = []
    for step in (7, 7, 8):
        model.load_state_dict({**model.state_dict(), "mix_step": torch.tensor(step)})
        masks.append(model.method.mixer(x, generator=model._mix_generator()).pixel_mask)
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


# ------------------------------------------------------------------------------------------------ config errors
def test_config_errors_before_training():
    cfg = Config.fromfile(FMNIST_CONFIG)
    validate_training_config(cfg)
    small = Config.fromfile(FMNIST_CONFIG)
    small.train_dataloader.batch_size = 1
    with pytest.raises(ValueError, match="batch_size=1"):
        validate_training_config(small)
    no_drop = Config.fromfile(FMNIST_CONFIG)
    no_drop.train_dataloader.drop_last = False
    with pytest.raises(ValueError, match="drop_last"):
        validate_training_config(no_drop)
    off = Config.fromfile(osp.join(ROOT, "configs/classification/tiny-vit_none_1xb128-20e_fmnist.py"))
    off.train_dataloader.batch_size = 1
    validate_training_config(off)  # no mixing: any batch size
    with pytest.raises(ValueError, match="unknown key"):
        MODELS.build(dict(type="MixClassifier", num_classes=10, backbone=dict(type="tiny_vit", patch_sise=7)))


# ------------------------------------------------------------------------------------------------ end to end
FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.needs_data(FMNIST)
# the config's in-memory batched path; with random crop + flip drawn per batch; the per-sample path
DATA_PATHS = {"in_memory": [], "in_memory_crop_flip": ["train_dataloader.dataset.transform.is_train=True"],
              "per_sample": ["train_dataloader.dataset.type=FashionMNIST",
                             "train_dataloader.sampler.type=DefaultSampler",
                             "train_dataloader.collate_fn.type=default_collate"]}


@pytest.mark.slow
@needs_fmnist
@pytest.mark.parametrize("data_path", list(DATA_PATHS))
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, data_path, fmnist_run):
    """The small run of tests/classification/conftest.py (3 epochs of 8 iterations), killed after epoch 1."""
    train_cmd, env = fmnist_run.train_cmd, fmnist_run.env
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    extra = DATA_PATHS[data_path]
    subprocess.run(train_cmd(straight, *extra), cwd=ROOT, env=env(), check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(train_cmd(killed, *extra), cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.exists(osp.join(killed, "epoch_1.pth")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not osp.exists(osp.join(killed, "epoch_3.pth"))
    resumed = subprocess.run(train_cmd(killed, *extra) + ["--resume"], cwd=ROOT, env=env(), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed epoch" in resumed.stdout + resumed.stderr
    a = load_checkpoint_file(osp.join(straight, "epoch_3.pth"))
    b = load_checkpoint_file(osp.join(killed, "epoch_3.pth"))
    assert a["meta"]["iter"] == b["meta"]["iter"] == 24
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0, msg=k)
    # every checkpoint under a real name is whole; a temporary file the kill may have left (had it landed inside a
    # save) is removed by the resumed run's first save (classification.foundation.atomic.remove_stale_temporaries)
    for name in os.listdir(killed):
        if name.endswith(".pth"):
            load_checkpoint_file(osp.join(killed, name))
    assert not [f for f in os.listdir(killed) if f.startswith(".tmp-")]


@pytest.mark.slow
def test_corrupt_file_on_one_gloo_rank_stops_all_ranks(folder_with_corrupt_file, tmp_path, fmnist_run):
    root, bad = folder_with_corrupt_file
    base = osp.join(ROOT, "configs/classification/_base_")
    cfg = tmp_path / "corrupt_cfg.py"
    cfg.write_text(f"""
_base_ = ["{base}/default_runtime.py", "{base}/schedules/adamw_fmnist.py"]
model = dict(type="MixClassifier", num_classes=2, mix_defaults=dict(mask_size=16),
             mix=[dict(type="maskmix", prob=0.5), dict(type="cutmix", prob=0.25), dict(type="mixup", prob=0.25)],
             backbone=dict(type="tiny_vit", img_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=1, num_heads=2),
             label_policy=dict(type="PALLabels"))
train_dataloader = dict(batch_size=2, num_workers=0, drop_last=True, sampler=dict(type="DefaultSampler", shuffle=False),
                        collate_fn=dict(type="default_collate"),
                        dataset=dict(type="ImageNetFolder", root="{root}", split="train"))
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None))
""")
    port = str(random.randint(20000, 40000))
    # a rank left waiting would hang in a gloo collective until its 30-minute timeout: the 300 s limit of the run
    # (TimeoutExpired fails the test) is what proves torchrun stopped it
    proc = subprocess.run(["bash", "tools/dist_train.sh", str(cfg), "2", "--work-dir", str(tmp_path / "work")],
                          cwd=ROOT, env=fmnist_run.env(PORT=port), capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"error: {bad}: cannot decode image" in log, log[-3000:]  # one line (a UserError), not a traceback


def test_persistent_loader_workers_shut_down_cleanly_when_the_runner_goes():
    """A loader freed by a cyclic collection (as the Runner's are) loses its workers' shutdown message, so each worker
    join waits out its 5 s timeout; release_dataloader_workers stops them cleanly first."""
    import gc

    from torch.utils.data import TensorDataset

    from classification.engine.distributed import release_dataloader_workers

    def runner_in_a_cycle():
        loader = DataLoader(TensorDataset(torch.arange(32.)), batch_size=8, num_workers=2, persistent_workers=True)
        for _ in loader:
            pass
        runner = SimpleNamespace(_train_loop=SimpleNamespace(dataloader=loader), _val_loop=dict(type="ValLoop"))
        runner.self = runner  # the Runner sits in reference cycles
        return runner, list(loader._iterator._workers)

    runner, workers = runner_in_a_cycle()
    release_dataloader_workers(runner)
    # stopped now, by the loader's own clean shutdown (joined, exit code 0), not later by a collection that times out
    assert [w.exitcode for w in workers] == [0, 0]
    del runner
    gc.collect()

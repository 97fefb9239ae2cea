"""docs/get-started.md "Train on your own images", replayed as a new user would: the folder layout it shows, its config
and its commands taken from the page itself (so it cannot drift), one epoch of training, then the test."""
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from classification.foundation.host import ROOT


def page_blocks(section: str) -> dict:
    """The fenced code blocks of docs/get-started.md's ``## section``, by language (the first of each)."""
    text = open(osp.join(ROOT, "docs", "get-started.md"), encoding="utf-8").read()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = {}
    for language, code in re.findall(r"```(\w*)\n(.*?)```", body, flags=re.S):
        blocks.setdefault(language, code)
    return blocks


@pytest.mark.slow
def test_the_readme_recipe_trains_one_epoch_on_an_image_folder(tmp_path):
    blocks = page_blocks("Train on your own images")
    config_text, commands = blocks["python"], blocks["bash"]
    train_cmd, test_cmd = [shlex.split(line.split("#")[0]) for line in commands.strip().splitlines()]
    config_path = train_cmd[2]  # where the page saves it, relative to the repository
    data_root = re.search(r'data_root = "([^"]+)"', config_text).group(1)
    # the user's checkout: the shipped configs next to the new one, the images under the data root
    shipped = osp.join(ROOT, osp.dirname(config_path))
    folder = tmp_path / osp.dirname(config_path)
    folder.mkdir(parents=True)
    base = re.search(r'_base_ = "\./([^"]+)"', config_text).group(1)
    for name in (base, "_base_"):
        os.symlink(osp.join(shipped, name), folder / name)
    (tmp_path / config_path).write_text(config_text)
    rng = np.random.default_rng(0)
    classes = int(re.search(r"num_classes=(\d+)", config_text).group(1))
    batch = int(re.search(r"train_dataloader = dict\(batch_size=(\d+)", config_text).group(1))
    for split, per_class in (("train", -(-batch // classes)), ("val", 2)):  # one batch of training images
        for c in range(classes):
            os.makedirs(tmp_path / data_root / split / f"class{c}")
            for i in range(per_class):
                size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)), 3)
                Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(
                    tmp_path / data_root / split / f"class{c}" / f"{i}.jpg")

    def run(cmd):
        cmd = [sys.executable if c == ".venv/bin/python" else osp.join(ROOT, c) if c.startswith("tools/") else c
               for c in cmd]
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    epochs = train_cmd[train_cmd.index("--epochs") + 1]
    log = run([c if c != epochs else "1" for c in train_cmd])
    assert f"train data: {classes * -(-batch // classes)} samples (ImageNetFolder), 1 batches of {batch}" in log
    work = tmp_path / test_cmd[3].rsplit("/", 1)[0]
    assert (work / "epoch_1.pth").is_file(), log[-3000:]
    assert re.search(r"Epoch\(val\) \[1\]\[1/1\]\s+top1: [\d.]+", log), log[-3000:]
    run([c.replace(f"epoch_{epochs}.pth", "epoch_1.pth") for c in test_cmd])
    metrics = json.loads((work / "test" / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"top1"} and 0 <= metrics["top1"] <= 100

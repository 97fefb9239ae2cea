"""The paper-table collector's readers (classification/experiments/reproduction/paper_tables.py) on hand-written run
folders: the value reported (rounded to 6 decimals, scaled), the best epoch, and one ValueError naming the file for
each malformed input — edges found by ``make mutate MODULES=classification/experiments/reproduction/paper_tables.py``.
"""
import json
import os

import pytest

from classification.experiments.reproduction.paper_tables import eval_dir, pretrain_dir, read_best, read_metric


def _metrics(root, content):
    folder = eval_dir(str(root), "run")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "metrics.json")
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def test_read_metric_scales_and_rounds_to_six_decimals(tmp_path):
    path = _metrics(tmp_path, {"metrics": {"mIoU": 0.123456789, "aAcc": 3}})
    assert read_metric(str(tmp_path), "run", "mIoU", scale=100.0) == (12.345679, path)
    assert read_metric(str(tmp_path), "run", "mIoU") == (0.123457, path)
    assert read_metric(str(tmp_path), "run", "aAcc") == (3.0, path)
    assert read_metric(str(tmp_path), "other", "mIoU") == (None, eval_dir(str(tmp_path), "other") + "/metrics.json")


@pytest.mark.parametrize("content,message", [
    ("{not json", r"metrics.json: not valid JSON \("),
    ([1, 2], r"metrics.json: expected an object with 'metrics': \{name: number\}"),
    ({"metrics": {}}, r"metrics.json: no metric 'mIoU' \(it has: nothing\)"),
    ({"metrics": {"b": 1, "a": 2}}, r"metrics.json: no metric 'mIoU' \(it has: a, b\)"),
    ({"metrics": {"mIoU": True}}, r"metrics.json: metric 'mIoU' is True, not a number"),
    ({"metrics": {"mIoU": "0.5"}}, r"metrics.json: metric 'mIoU' is '0.5', not a number"),
])
def test_read_metric_names_the_file_and_what_is_wrong(tmp_path, content, message):
    path = _metrics(tmp_path, content)
    with pytest.raises(ValueError, match=message) as err:
        read_metric(str(tmp_path), "run", "mIoU")
    assert str(err.value).startswith(path)


def test_read_best_is_the_highest_val_top1_and_the_best_checkpoints_epoch(tmp_path):
    folder = pretrain_dir(str(tmp_path), "stem")
    os.makedirs(folder)
    path = os.path.join(folder, "curve.json")
    with open(path, "w") as f:
        json.dump({"val_top1": [[1, 50.1234567], [2, 71.76543219], [3, 70.0]]}, f)
    assert read_best(str(tmp_path), "stem") == (71.765432, None, path)  # no best checkpoint (yet)
    for name in ("best_top1_epoch_2.pth", "best_top1_epoch_12.pth", "best_top1_epoch_x.pth", "epoch_40.pth"):
        open(os.path.join(folder, name), "w").close()
    assert read_best(str(tmp_path), "stem") == (71.765432, 12, path)
    with open(path, "w") as f:
        f.write("[1, 2]")
    with pytest.raises(ValueError, match=r"curve.json: not the curve TrainingCurveHook writes \(") as err:
        read_best(str(tmp_path), "stem")
    assert str(err.value).startswith(path)

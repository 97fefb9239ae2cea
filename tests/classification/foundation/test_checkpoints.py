"""Strict checkpoint loading (classification.foundation.checkpoints, classification.engine.runner.MixProRunner): a missing,
unexpected or differently-shaped key is an error naming the key and both shapes, nothing is loaded then; partial loading
only where patterns name the keys; a file that is not a checkpoint is one line naming it."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from classification.foundation.checkpoints import (CheckpointMismatchError, checkpoint_state,
                                               install_safe_checkpoint_loading, load_checkpoint_strict,
                                               load_state_dict_strict)
from classification.foundation.errors import UserError
from classification.engine.runner import HideStartupDetails, MixProRunner


class Net(nn.Module):
    def __init__(self, width=4, classes=3):
        super().__init__()
        self.body = nn.Linear(2, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_mismatch_names_every_key_with_both_shapes_and_loads_nothing():
    model, other = Net(), Net(width=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(other.state_dict(), extra=torch.zeros(1))
    del state["head.bias"]
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(model, state, "other.pth")
    message = str(info.value)
    assert message.startswith("other.pth does not fit Net: 3 of another shape: ")
    for key, ckpt, own in [("body.bias", (5,), (4,)), ("body.weight", (5, 2), (4, 2)), ("head.weight", (3, 5), (3, 4))]:
        assert f"{key} (checkpoint {ckpt}, model {own})" in message
    assert "1 missing from the checkpoint: head.bias" in message and "1 not in the model: extra" in message
    assert "\n" not in message
    differences = info.value.differences
    assert differences.missing == ["head.bias"] and differences.unexpected == ["extra"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "a refused load changed weights"


def test_a_patch14_backbone_into_a_patch16_one_is_refused_naming_the_projection():
    """The downstream case: the same ViT layout with another patch size differs in one tensor, named with both
    shapes (the token grid, hence pos_embed, is the same: 56 px / 14 = 64 px / 16)."""
    from timm.models.vision_transformer import VisionTransformer
    p14 = VisionTransformer(img_size=56, patch_size=14, embed_dim=32, depth=1, num_heads=2, num_classes=0)
    p16 = VisionTransformer(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=0)
    with pytest.raises(CheckpointMismatchError, match=r"patch_embed\.proj\.weight \(checkpoint \(32, 3, 14, 14\), "
                                                      r"model \(32, 3, 16, 16\)\)") as info:
        load_state_dict_strict(p16, p14.state_dict(), "deit-p14.pth")
    assert info.value.differences.mismatched == [("patch_embed.proj.weight", (32, 3, 14, 14), (32, 3, 16, 16))]


def test_partial_loading_is_opt_in_and_reported():
    source, model = Net(classes=10), Net(classes=3)
    state = dict(source.state_dict(), **{"aux.weight": torch.zeros(2)})
    initial_head = model.head.weight.clone()
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight \(checkpoint \(10, 4\), model \(3, 4\)\)"):
        load_state_dict_strict(model, state, "src.pth", partial=["aux.*"])  # the head is not excused
    for patterns in (["head", "aux"], ["head.*", "aux.weight"], ["head.?eight", "head.bias", "aux*"]):
        report = load_state_dict_strict(model, state, "src.pth", partial=patterns)
        assert report.kept_initial == ["head.bias", "head.weight"] and report.dropped == ["aux.weight"]
        assert report.loaded == 2 and "partial loading kept 2" in report.format()
    torch.testing.assert_close(model.body.weight, source.body.weight)
    torch.testing.assert_close(model.head.weight, initial_head)
    with pytest.raises(CheckpointMismatchError):  # 'hea' is no key prefix of head.*: a pattern matches whole names
        load_state_dict_strict(model, state, "src.pth", partial=["hea", "aux"])


def test_checkpoint_layouts_and_extra_state():
    state = Net().state_dict()
    for layout in ({"state_dict": state}, {"model": state}, {"module": state}, state,
                   {"state_dict": {f"module.{k}": v for k, v in state.items()}}):
        assert set(checkpoint_state(layout, "x.pth")) == set(state)
    with pytest.raises(UserError, match="x.pth holds no state dict of tensors"):
        checkpoint_state({"meta": {"epoch": 1}}, "x.pth")

    class WithExtra(Net):
        def get_extra_state(self):
            return {"policy": 1}

        def set_extra_state(self, value):
            self.extra = value

    model = WithExtra()
    saved = model.state_dict()
    load_state_dict_strict(model, saved, "x.pth")  # non-tensor entries are compared by presence
    assert model.extra == {"policy": 1}
    with pytest.raises(CheckpointMismatchError, match="missing from the checkpoint: _extra_state"):
        load_state_dict_strict(WithExtra(), Net().state_dict(), "x.pth")


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    text, truncated = tmp_path / "notes.txt", tmp_path / "cut.pth"
    text.write_text("this is not a checkpoint\n")
    torch.save({"state_dict": Net().state_dict()}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    for bad in (text, truncated):
        with pytest.raises(UserError, match=f"^{bad} is not a readable torch checkpoint \\(") as info:
            load_checkpoint_strict(Net(), str(bad))
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*missing.pth"):
        load_checkpoint_strict(Net(), str(tmp_path / "missing.pth"))


@pytest.fixture
def runner_factory(tmp_path, monkeypatch):
    """MixProRunner(model, work_dir, cfg) with the weights-only loader installed for the test only."""
    monkeypatch.setattr(CheckpointLoader, "_schemes", dict(CheckpointLoader._schemes))
    install_safe_checkpoint_loading()

    def make(model, cfg=None, resume=False):
        return MixProRunner(model=model, work_dir=str(tmp_path / "work"), cfg=dict(cfg or {}), resume=resume,
                            experiment_name=f"strict-{id(model)}")
    return make


def test_runner_load_from_is_strict_partial_applies_to_load_from_only(tmp_path, runner_factory):
    path = str(tmp_path / "epoch_1.pth")
    source = Net(classes=10)
    torch.save({"state_dict": source.state_dict(), "meta": {"epoch": 1, "iter": 4}}, path)
    with pytest.raises(CheckpointMismatchError, match=r"head\.bias \(checkpoint \(10,\), model \(3,\)\)"):
        runner_factory(Net()).load_checkpoint(path)
    model = Net()
    runner_factory(model, dict(load_from_partial=["head"])).load_checkpoint(path)
    torch.testing.assert_close(model.body.weight, source.body.weight)
    resumed = runner_factory(Net(), dict(load_from_partial=["head"]), resume=True)
    with pytest.raises(CheckpointMismatchError):  # a resume restores a run exactly: no partial loading
        resumed.load_checkpoint(path)


def test_runner_console_leaves_out_the_startup_details(runner_factory):
    runner = runner_factory(Net())
    console = [h for h in runner.logger.handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    files = [h for h in runner.logger.handlers if isinstance(h, logging.FileHandler)]
    assert console and files
    assert all(any(isinstance(f, HideStartupDetails) for f in h.filters) for h in console)
    assert not any(isinstance(f, HideStartupDetails) for h in files for f in h.filters), "the log file keeps all"

    def shown(message):
        return HideStartupDetails().filter(SimpleNamespace(getMessage=lambda: message))
    for hidden in ("\n" + "-" * 60 + "\nSystem environment:\n    sys.platform: linux", "Config:\nmodel = dict()",
                   "Hooks will be executed in the following order:\nbefore_run:", "paramwise_options -- head.bias:lr=1",
                   '"FileClient" will be deprecated in future. Please use io functions in https://x'):
        assert not shown(hidden), hidden
    for kept in ("Epoch(train) [1][50/468]  lr: 4e-3", "loaded 56 tensors from x.pth", "Config: see the work dir"):
        assert shown(kept), kept


def test_resume_finds_the_newest_checkpoint_when_the_pointer_is_unusable(tmp_path):
    """mmengine rewrites ``last_checkpoint`` non-atomically after each save: a kill -9 there leaves it empty. The
    pointer wins when it names a file; otherwise the newest epoch/iter/preempted checkpoint; none → None."""
    import os
    from classification.foundation.checkpoints import latest_checkpoint
    work = str(tmp_path)
    assert latest_checkpoint(work) is None
    (tmp_path / "last_checkpoint").write_text("")
    assert latest_checkpoint(work) is None
    for i, name in enumerate(["epoch_1.pth", "epoch_2.pth", "best_top1_epoch_2.pth"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    assert latest_checkpoint(work) == str(tmp_path / "epoch_2.pth")  # empty pointer; best_* is not a resume point
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_9.pth"))
    assert latest_checkpoint(work) == str(tmp_path / "epoch_2.pth")  # names a missing file
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth") + "\n")
    assert latest_checkpoint(work) == str(tmp_path / "epoch_1.pth")  # a usable pointer wins
    (tmp_path / "last_checkpoint").unlink()
    (tmp_path / "preempted.pth").write_bytes(b"x")
    os.utime(tmp_path / "preempted.pth", (2000, 2000))
    assert latest_checkpoint(work) == str(tmp_path / "preempted.pth")

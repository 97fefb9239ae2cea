"""The strict loader (classification/foundation/checkpoints.py) against tensors of the right size in the wrong shape.

A transposed or reshaped tensor has the model tensor's element count: a check on sizes (numel), on the set of
dimensions or on the leading dimension only would load it silently, scrambling the weights. Every variant here must be
refused with one error naming the key and both shapes, and leave the model untouched — through the in-memory loader,
a checkpoint file and an ``init_cfg``.
"""
import re

import pytest
import torch
import torch.nn as nn

from classification.foundation.checkpoints import (CheckpointMismatchError, load_checkpoint_strict, load_init_checkpoint,
                                               load_state_dict_strict)


class Net(nn.Module):
    """A linear (4,3) weight, a conv (8,3,2,2) weight and a (1,6,5) embedding: every way to rearrange them."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.conv = nn.Conv2d(3, 8, 2)
        self.pos = nn.Parameter(torch.randn(1, 6, 5))


def _rearranged():
    """(key, tensor of the model's element count but another shape) for every rearrangement of each tensor."""
    torch.manual_seed(0)
    fc, conv, pos = torch.randn(4, 3), torch.randn(8, 3, 2, 2), torch.randn(1, 6, 5)
    return [("fc.weight", fc.T), ("fc.weight", fc.reshape(12)), ("fc.weight", fc.reshape(2, 6)),
            ("fc.weight", fc.reshape(1, 4, 3)), ("fc.bias", torch.randn(2, 2)), ("fc.bias", torch.randn(1, 4)),
            ("conv.weight", conv.permute(1, 0, 2, 3)), ("conv.weight", conv.reshape(8, 12)),
            ("conv.weight", conv.reshape(8, 3, 4, 1)), ("conv.weight", conv.permute(0, 1, 3, 2).reshape(8, 3, 4, 1)),
            ("pos", pos.reshape(1, 5, 6)), ("pos", pos.reshape(6, 5)), ("pos", pos.permute(2, 1, 0))]


def _check_refused(err, model, before, key, bad):
    message = str(err.value)
    assert re.search(rf"{re.escape(key)} \(checkpoint {re.escape(str(tuple(bad.shape)))}, model "
                     rf"{re.escape(str(tuple(before[key].shape)))}\)", message), message
    assert [m[0] for m in err.value.differences.mismatched] == [key]
    for k, v in model.state_dict().items():  # nothing was loaded, not even the tensors that fit
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("key,bad", _rearranged(), ids=lambda v: v if isinstance(v, str) else str(tuple(v.shape)))
def test_a_rearranged_tensor_of_equal_size_is_refused(key, bad):
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.randn_like(v) for k, v in before.items()}
    state[key] = bad
    assert bad.numel() == before[key].numel() and bad.shape != before[key].shape
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(model, state, "ckpt.pth")
    _check_refused(err, model, before, key, bad)


@pytest.mark.parametrize("how", ["file", "init_cfg"])
def test_the_file_and_init_cfg_paths_refuse_a_transposed_weight(how, tmp_path):
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.randn_like(v) for k, v in before.items()}
    state["fc.weight"] = state["fc.weight"].T.contiguous()
    path = str(tmp_path / "ckpt.pth")
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        if how == "file":
            load_checkpoint_strict(model, path)
        else:
            load_init_checkpoint(model, dict(type="Pretrained", checkpoint=path))
    _check_refused(err, model, before, "fc.weight", state["fc.weight"])


def test_the_same_tensors_in_the_right_shapes_load_exactly():
    """The control: the loader does load a fitting state, value for value."""
    model = Net()
    state = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    report = load_state_dict_strict(model, state, "ckpt.pth")
    assert report.loaded == len(state)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_partial_loading_keeps_a_rearranged_tensor_at_its_initial_value():
    """A rearranged tensor named in ``partial`` is excused, not loaded: the model keeps its own values there."""
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.randn_like(v) for k, v in before.items()}
    state["fc.weight"] = state["fc.weight"].T.contiguous()
    report = load_state_dict_strict(model, state, "ckpt.pth", partial=["fc.weight"])
    assert report.kept_initial == ["fc.weight"]
    after = model.state_dict()
    assert torch.equal(after["fc.weight"], before["fc.weight"])
    for k in ("fc.bias", "conv.weight", "conv.bias", "pos"):
        assert torch.equal(after[k], state[k]), k


def test_missing_keys_named_in_partial_stay_initial_and_the_report_is_logged(monkeypatch):
    """``partial`` as one string or a list excuses missing keys too; the report names the source and goes to the
    current logger."""
    from classification.foundation import checkpoints

    logged = []
    monkeypatch.setattr(checkpoints, "print_log", lambda msg, **kw: logged.append((msg, kw)))
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.randn_like(v) for k, v in before.items() if k != "pos"}
    for partial in ("pos", ["pos"]):
        report = load_state_dict_strict(model, state, "ckpt.pth", partial=partial)
        assert (report.source, report.loaded, report.kept_initial, report.dropped) == ("ckpt.pth", 4, ["pos"], [])
        assert torch.equal(model.pos, before["pos"]) and torch.equal(model.fc.weight, state["fc.weight"])
        assert logged[-1] == ("loaded 4 tensors from ckpt.pth; partial loading kept 1 at their initial values: pos",
                              dict(logger="current"))


def test_the_error_advises_loading_a_fitting_checkpoint_unless_given_a_hint():
    model = Net()
    state = {k: torch.randn_like(v) for k, v in model.state_dict().items() if k != "pos"}
    with pytest.raises(CheckpointMismatchError, match=r"ckpt.pth does not fit Net: 1 missing from the checkpoint: "
                                                      r"pos\. Load a checkpoint of this model; to leave keys"):
        load_state_dict_strict(model, state, "ckpt.pth")
    with pytest.raises(CheckpointMismatchError, match=r"pos\. Convert it first; to leave keys"):
        load_state_dict_strict(model, state, "ckpt.pth", hint="Convert it first")


class Versioned(nn.Module):
    """A module whose loading reads its state-dict version from ``_metadata`` (as BatchNorm does)."""
    _version = 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.seen_versions = []

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        self.seen_versions.append(local_metadata.get("version"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


def test_the_checkpoints_module_versions_reach_the_modules(tmp_path):
    """``_metadata`` (module versions) survives checkpoint_state and the strict load: a BatchNorm of an old version
    is upgraded by its own ``_load_from_state_dict`` only if it sees the version the checkpoint was saved with."""
    from classification.foundation.checkpoints import checkpoint_state

    saved = Versioned().state_dict()
    saved._metadata[""]["version"] = 1  # written by an older release of the module
    state = checkpoint_state({"state_dict": saved}, "old.pth")
    assert state._metadata[""]["version"] == 1
    model = Versioned()
    load_state_dict_strict(model, state, "old.pth")
    assert model.seen_versions == [1]
    path = tmp_path / "old.pth"
    torch.save({"state_dict": saved}, path)
    load_checkpoint_strict(model, str(path))
    assert model.seen_versions == [1, 1]

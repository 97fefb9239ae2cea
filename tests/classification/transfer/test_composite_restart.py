"""A composite-set generation killed midway (simulated: the Nth file opened for writing gets half its first write, then
the writer dies) leaves no truncated JSON / text file and no completion marker, so the next call generates the whole
set again, byte for byte as an uninterrupted one: make_composite's ``COMPLETE_MARKER`` (what the demo checks) and the
downstream set's ``composite.json`` (:func:`classification.experiments.reproduction.downstream.ensure_data`)."""
import builtins
import io
import json
import os

import pytest

from classification.experiments.reproduction import downstream
from classification.transfer.downstream_data.composite import COMPLETE_MARKER, make_composite

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
SMALL = dict(num_train=2, num_val=2, size=32, verbose=False)
SMALL_FILES = 1 + 2 * 2 + 1 + 2 * 2 + 1  # classes.txt, training jpg+png, instances_train.json, validation, _val.json
pytestmark = [pytest.mark.needs_data(FMNIST),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


class Killed(Exception):
    pass


class _HalfWriter:
    """A file that takes half of its first write, flushes it to disk and dies."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.close()
        raise Killed(self._file.name)

    def fileno(self):  # PIL writes through write() then, not straight to the descriptor
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def kill_at(monkeypatch, root, nth: int) -> None:
    """From now on the ``nth`` file opened for writing under ``root`` is a :class:`_HalfWriter`."""
    real, opened = builtins.open, [0]

    def fake_open(file, mode="r", *args, **kwargs):
        handle = real(file, mode, *args, **kwargs)
        if str(file).startswith(str(root)) and set(mode) & set("wax+"):
            opened[0] += 1
            if opened[0] == nth:
                return _HalfWriter(handle)
        return handle

    monkeypatch.setattr(builtins, "open", fake_open)


def tree(root) -> dict:
    """{relative path: bytes} of every file under ``root``."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                files[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return files


def assert_no_truncated_text(out, reference: dict) -> None:
    """Every JSON file in ``out`` is whole (it parses; it may be an earlier set's), ``classes.txt`` is that of an
    uninterrupted generation, and no temporary file is left."""
    found = tree(out)
    assert not [p for p in found if os.path.basename(p).startswith(".tmp-")]
    for path, data in found.items():
        if path.endswith(".json"):
            json.loads(data)
        elif path.endswith(".txt"):
            assert data == reference[path], f"{path} is truncated"


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    make_composite(str(out), **SMALL)
    return tree(out)


@pytest.mark.parametrize("nth", range(1, SMALL_FILES + 1))
def test_a_generation_killed_at_any_file_is_generated_again_whole(tmp_path, monkeypatch, small_reference, nth):
    assert len(small_reference) == SMALL_FILES
    out = tmp_path / "composite"
    kill_at(monkeypatch, out, nth)
    with pytest.raises(Killed):
        make_composite(str(out), **SMALL)
    monkeypatch.undo()
    assert not (out / COMPLETE_MARKER).exists()  # the demo generates it again
    assert_no_truncated_text(out, small_reference)
    make_composite(str(out), **SMALL)
    assert tree(out) == small_reference


def test_a_killed_generation_over_a_whole_set_leaves_no_marker(tmp_path, monkeypatch, small_reference):
    out = tmp_path / "composite"
    make_composite(str(out), **dict(SMALL, seed=1))
    kill_at(monkeypatch, out, 3)  # seed 0 over it: killed at its first label map
    with pytest.raises(Killed):
        make_composite(str(out), **SMALL)
    monkeypatch.undo()
    assert not (out / COMPLETE_MARKER).exists()


@pytest.mark.parametrize("nth, over_this_set", [(3, False), (26, False), (27, False), (28, False), (3, True)],
                         ids=["label-map", "last-image", "instances_val", "marker", "another-set-over-this-one"])
def test_the_downstream_set_generates_data_killed_before_its_marker_again(tmp_path, monkeypatch, nth, over_this_set):
    """``over_this_set``: the killed generation (seed 1) was over a whole set of the parameters asked for next."""
    reference = tmp_path / "reference"
    downstream.ensure_data(str(reference), quick=True)
    assert len(tree(reference)) == 28  # 27 files of the set (12 images), then composite.json
    out = tmp_path / "composite"
    if over_this_set:
        downstream.ensure_data(str(out), quick=True)
        monkeypatch.setitem(downstream.DATA, "seed", 1)
    kill_at(monkeypatch, out, nth)
    with pytest.raises(Killed):
        downstream.ensure_data(str(out), quick=True)
    monkeypatch.undo()
    assert_no_truncated_text(out, tree(reference))
    downstream.ensure_data(str(out), quick=True)
    assert tree(out) == tree(reference)

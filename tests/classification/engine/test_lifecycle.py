"""classification.engine.lifecycle.run: build → hooks → train / test → release workers → drop the Runner → finish
distributed, on success, on preemption (raised again after the clean end) and on failure (no barrier)."""
import pytest

from classification.engine import lifecycle
from classification.engine.preemption import TrainingPreempted


@pytest.fixture
def fake(monkeypatch):
    """A Runner that records what happens to it, and the release / finish calls of the lifecycle."""
    events = []

    class FakeRunner:
        rank, work_dir = 0, "/tmp/work"
        fail = None

        @classmethod
        def from_cfg(cls, cfg):
            events.append("build")
            return cls()

        def register_hook(self, hook):
            events.append(f"hook {hook}")

        def train(self):
            events.append("train")
            if FakeRunner.fail is not None:
                raise FakeRunner.fail

        def test(self):
            events.append("test")
            return {"top1": 12.5}

        def __del__(self):
            events.append("dropped")

    monkeypatch.setattr(lifecycle, "MixProRunner", FakeRunner)
    monkeypatch.setattr(lifecycle, "release_dataloader_workers", lambda runner: events.append("release"))
    monkeypatch.setattr(lifecycle, "finish_distributed", lambda: events.append("finish"))
    return FakeRunner, events


def test_train_then_test_then_a_clean_end(fake):
    runner, events = fake
    finished = lifecycle.run({}, test=True, hooks=["timer"])
    assert events == ["build", "hook timer", "train", "test", "release", "dropped", "finish"]
    assert finished.metrics == {"top1": 12.5} and finished.train_seconds >= 0
    assert (finished.rank, finished.work_dir) == (0, "/tmp/work")
    events.clear()
    assert lifecycle.run({}, train=False, test=True).train_seconds == 0.0
    assert events == ["build", "test", "release", "dropped", "finish"]


def test_a_preemption_ends_cleanly_then_is_raised_again(fake):
    runner, events = fake
    runner.fail = TrainingPreempted("SIGTERM", 7)
    with pytest.raises(TrainingPreempted) as stop:
        lifecycle.run({}, test=True)
    assert stop.value.code == 75 and events[:3] == ["build", "train", "release"] and events[-1] == "finish"


def test_a_failure_releases_the_workers_without_the_process_group_barrier(fake):
    runner, events = fake
    runner.fail = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        lifecycle.run({}, test=True)
    assert events[:3] == ["build", "train", "release"] and "test" not in events and "finish" not in events

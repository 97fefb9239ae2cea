"""classification.experiments.stages: dependency order, at most `jobs` spawned workers, errors that name the stage."""
import json
import os
import subprocess
import time

import pytest

from classification.experiments.stages import Stage, StageError, run_stages

# Workers are spawned interpreters: their functions must be importable, hence standard-library ones. Each one
# imports torch and the package (seconds on 2 cores), so the tests that spawn workers are marked slow.


@pytest.mark.slow
def test_independent_stages_run_at_once_in_their_own_processes_and_dependants_wait():
    before = os.environ.get("OMP_NUM_THREADS")
    runs = run_stages([Stage("a", os.getpid, work_dir="/tmp/a"), Stage("b", os.getpid, work_dir="/tmp/b"),
                       Stage("c", os.getpid, after=("a",), work_dir="/tmp/c")], jobs=2, on_event=None)
    assert {name: run.result for name, run in runs.items()} == {name: run.pid for name, run in runs.items()}
    assert len({run.pid for run in runs.values()} | {os.getpid()}) == 4
    assert runs["b"].started < runs["a"].finished  # b did not wait for a
    assert runs["c"].started >= runs["a"].finished  # c did
    assert os.environ.get("OMP_NUM_THREADS") == before  # the workers' setting is not left behind


def test_one_job_runs_every_stage_here_in_list_order():
    runs = run_stages([Stage("a", os.getpid), Stage("b", json.loads, dict(s="[1, 2]"))], jobs=1)
    assert runs["a"].result == runs["a"].pid == runs["b"].pid == os.getpid()
    assert runs["b"].result == [1, 2] and runs["b"].started >= runs["a"].finished


@pytest.mark.slow
def test_a_failing_worker_names_its_stage_carries_its_traceback_and_stops_the_others():
    t0 = time.time()
    with pytest.raises(StageError, match="stage 'bad' failed") as info:
        run_stages([Stage("slow", subprocess.run, dict(args=["sleep", "600"])),
                    Stage("bad", json.loads, dict(s="{"))], jobs=2, on_event=None)
    assert info.value.stage == "bad"
    assert "Traceback" in str(info.value) and "JSONDecodeError" in str(info.value)
    # the sleeping stage was terminated, not waited for (far below its 600 s even on a loaded machine, where the
    # workers' start-up alone took 10-15 s)
    assert time.time() - t0 < 300


@pytest.mark.slow
def test_a_worker_that_dies_without_a_result_is_reported_with_its_exit_code():
    with pytest.raises(StageError, match=r"(?s)stage 'crash'.*exited with code -6"):
        run_stages([Stage("crash", os.abort)], jobs=2, on_event=None)


@pytest.mark.parametrize("stages, jobs, message", [
    ([Stage("a", os.getpid, work_dir="w"), Stage("b", os.getpid, work_dir="./w")], 2, "both write"),
    ([Stage("a", os.getpid, after=("b",)), Stage("b", os.getpid)], 2, "not listed before it"),
    ([Stage("a", os.getpid), Stage("a", os.getpid)], 1, "two stages are named"),
    ([Stage("a", os.getpid)], 0, "jobs must be a positive integer"),
])
def test_bad_plans_are_refused(stages, jobs, message):
    with pytest.raises(ValueError, match=message):
        run_stages(stages, jobs=jobs)


@pytest.mark.slow
def test_a_local_stage_runs_here_once_no_worker_runs():
    runs = run_stages([Stage("worker", subprocess.run, dict(args=["sleep", "1"])),
                       Stage("here", os.getpid, local=True)], jobs=2, on_event=None)
    assert runs["here"].result == runs["here"].pid == os.getpid() != runs["worker"].pid
    assert runs["here"].started >= runs["worker"].finished  # it waited although nothing in `after` said so


def _nap(seconds: float, fail: bool = False) -> float:
    time.sleep(seconds)
    if fail:
        raise RuntimeError("the nap failed")
    return seconds


def test_thread_stages_run_here_side_by_side_and_a_failure_stops_only_the_launching():
    stages = [Stage("long", _nap, dict(seconds=0.6), thread=True),
              Stage("bad", _nap, dict(seconds=0.1, fail=True), thread=True),
              Stage("next", _nap, dict(seconds=0.0), thread=True)]
    started, ended = [], []
    with pytest.raises(RuntimeError, match="the nap failed"):
        run_stages(stages, jobs=2, on_event=None, on_start=lambda s: started.append(s.name),
                   on_end=lambda s, run: ended.append(s.name))
    assert started == ["long", "bad"] and ended == ["long"]  # the running one ended, the next never started
    failed = []
    runs = run_stages(stages, jobs=2, on_event=None, on_failure=lambda s, error: failed.append(s.name) or True)
    assert failed == ["bad"] and sorted(runs) == ["long", "next"]
    assert runs["long"].pid == runs["next"].pid == os.getpid() and runs["long"].result == 0.6
    assert runs["long"].started < runs["next"].started < runs["long"].finished  # in the failed one's place, beside


def test_a_failure_kept_going_skips_the_stages_after_it():
    stages = [Stage("bad", _nap, dict(seconds=0.0, fail=True), thread=True),
              Stage("child", _nap, dict(seconds=0.0), after=("bad",), thread=True),
              Stage("other", _nap, dict(seconds=0.0), thread=True)]
    for jobs in (1, 2):
        runs = run_stages(stages, jobs=jobs, on_event=None, on_failure=lambda s, error: True)
        assert sorted(runs) == ["other"], jobs

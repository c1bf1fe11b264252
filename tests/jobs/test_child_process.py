"""Jobs in a child process per lane (``isolation="process"``, the app's way): the same contract as threads."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from engine.jobs import JobManager
from engine.jobs.registry import WORKFLOWS
from engine.runs import RunStore
from tests.jobs._procs import alive


@pytest.fixture(autouse=True)
def fake_kind(monkeypatch):
    # set in this process only: the child gets the entry with each job
    monkeypatch.setitem(WORKFLOWS, "fake", "tests.jobs._fake_workflows")


@pytest.fixture
def mgr(tmp_path):
    m = JobManager(RunStore(tmp_path), devices=["cpu"], isolation="process")
    yield m
    m.close()


def _spec(**params):
    return {"kind": "fake", "params": params}


def test_a_job_runs_in_the_lanes_child_and_publishes_to_memory(mgr):
    rid = mgr.submit(_spec(steps=8), arrays={"x": np.ones(3)})
    assert mgr.wait(rid, 60) == "done"
    snap = mgr.snapshot(rid)
    assert snap["iteration"] == 8 and [r["iteration"] for r in snap["history"]] == list(range(1, 9))
    assert snap["preview"].shape == (4, 4) and snap["preview"][0, 0] == 8
    summary = mgr.store.get(rid).read_json("summary.json")
    assert summary["total"] == pytest.approx(32.0)
    child = mgr.worker_pids()["cpu"]
    assert summary["pid"] == child != os.getpid()
    # the next job of the lane reuses the same child (torch is imported once)
    rid2 = mgr.submit(_spec(steps=2))
    assert mgr.wait(rid2, 30) == "done"
    assert mgr.store.get(rid2).read_json("summary.json")["pid"] == child


def test_cancel_reaches_the_child_within_a_step(mgr):
    rid = mgr.submit(_spec(steps=10_000, delay=0.05))
    t_end = time.time() + 60
    while mgr.snapshot(rid)["iteration"] < 3 and time.time() < t_end:
        time.sleep(0.01)
    mgr.cancel(rid)
    t0 = time.time()
    assert mgr.wait(rid, 5) == "cancelled"
    assert time.time() - t0 < 1.0  # a step is 0.05 s, the parent looks at the flag every 0.1 s
    assert mgr.store.get(rid).status()["message"] == "stopped by the user"


def test_a_failure_in_the_child_is_a_plain_message(mgr):
    rid = mgr.submit(_spec(fail=True))
    assert mgr.wait(rid, 60) == "failed"
    assert "internal error" in mgr.snapshot(rid)["message"]
    assert "planned failure" in (mgr.store.get(rid).path / "error.txt").read_text()


def test_a_killed_child_fails_its_run_and_the_next_job_gets_a_new_one(mgr):
    rid = mgr.submit(_spec(steps=10_000, delay=0.05, checkpoint_every=2))
    t_end = time.time() + 60
    while mgr.snapshot(rid)["iteration"] < 5 and time.time() < t_end:
        time.sleep(0.01)
    first = mgr.worker_pids()["cpu"]
    os.kill(first, signal.SIGKILL)
    assert mgr.wait(rid, 10) == "failed"
    msg = mgr.snapshot(rid)["message"]
    assert "worker process was killed by signal 9" in msg and "Resume" in msg
    assert mgr.store.get(rid).status()["state"] == "failed"
    # it resumes from its checkpoint in a new child
    mgr.resume(rid)
    time.sleep(0.3)
    mgr.cancel(rid)
    assert mgr.wait(rid, 60) == "cancelled"
    assert mgr.worker_pids()["cpu"] != first
    its = [r["iteration"] for r in mgr.store.get(rid).metrics()]
    assert its == list(range(1, its[-1] + 1))  # the log went on from the checkpoint: no gap, no duplicate


def test_a_light_job_runs_in_its_own_child_beside_a_heavy_one(mgr, monkeypatch):
    import engine.jobs.manager as manager_module

    monkeypatch.setitem(WORKFLOWS, "fake_light", "tests.jobs._fake_workflows")
    monkeypatch.setattr(manager_module, "LIGHT_KINDS", frozenset({"fake_light"}))
    heavy = mgr.submit(_spec(steps=400, delay=0.05))
    light = mgr.submit({"kind": "fake_light", "params": {"steps": 3}})
    assert mgr.wait(light, 60) == "done"
    assert mgr.snapshot(heavy)["state"] == "running"
    pids = mgr.worker_pids()
    assert set(pids) == {"cpu", "cpu/light"} and pids["cpu"] != pids["cpu/light"]
    mgr.cancel(heavy)
    assert mgr.wait(heavy, 10) == "cancelled"


def test_an_idle_lane_ends_its_child(tmp_path, monkeypatch):
    monkeypatch.setenv("INVERSE_STUDIO_WORKER_IDLE_S", "0.3")
    m = JobManager(RunStore(tmp_path), devices=["cpu"], isolation="process")
    try:
        rid = m.submit(_spec(steps=2))
        assert m.wait(rid, 60) == "done"
        pid = m.store.get(rid).read_json("summary.json")["pid"]
        t_end = time.time() + 10
        while alive(pid) and time.time() < t_end:
            time.sleep(0.05)
        assert not alive(pid) and m.worker_pids() == {}
        rid2 = m.submit(_spec(steps=2))  # a new child for the next job
        assert m.wait(rid2, 60) == "done"
    finally:
        m.close()


def test_a_child_that_cannot_start_fails_its_run_in_plain_words(tmp_path, monkeypatch):
    import engine.jobs.child as child_module

    # an interpreter that exits at once with status 1, as one whose imports are broken would
    monkeypatch.setattr(child_module.sys, "executable", "/bin/false")
    m = JobManager(RunStore(tmp_path), devices=["cpu"], isolation="process")
    try:
        rid = m.submit(_spec(steps=2))
        assert m.wait(rid, 30) == "failed"
        assert "worker process exited with status 1" in m.snapshot(rid)["message"]
        assert m.store.get(rid).status()["state"] == "failed"
    finally:
        m.close()


def test_isolation_is_checked(tmp_path):
    with pytest.raises(ValueError, match="isolation"):
        JobManager(RunStore(tmp_path), devices=["cpu"], isolation="fork")


@pytest.mark.parametrize("value, expected", [(None, "process"), ("thread", "thread"), (" Process ", "process"),
                                             ("bogus", "process")])
def test_the_app_runs_jobs_in_processes_unless_told(monkeypatch, value, expected):
    from ui.jobs import isolation

    if value is None:
        monkeypatch.delenv("INVERSE_STUDIO_ISOLATION", raising=False)
    else:
        monkeypatch.setenv("INVERSE_STUDIO_ISOLATION", value)
    assert isolation() == expected

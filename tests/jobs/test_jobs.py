"""Job manager: queueing, cancel within a step, failure capture, restart and resume."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.jobs import JobManager
from engine.jobs.registry import WORKFLOWS
from engine.runs import RunStore


@pytest.fixture(autouse=True)
def fake_kind(monkeypatch):
    monkeypatch.setitem(WORKFLOWS, "fake", "tests.jobs._fake_workflows")


def _spec(**params):
    return {"kind": "fake", "params": params}


def test_run_to_completion_with_inputs(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    rid = mgr.submit(_spec(steps=8), arrays={"x": np.ones(3)})
    assert mgr.wait(rid, 20) == "done"
    snap = mgr.snapshot(rid)
    assert snap["iteration"] == 8 and len(snap["history"]) == 8
    assert snap["preview"].shape == (4, 4)
    run = mgr.store.get(rid)
    assert run.read_json("summary.json")["total"] == pytest.approx(32.0)
    assert [r["iteration"] for r in run.metrics()] == list(range(1, 9))


def test_two_jobs_queue_on_one_worker(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    a = mgr.submit(_spec(steps=20, delay=0.02))
    b = mgr.submit(_spec(steps=3))
    time.sleep(0.15)
    assert mgr.snapshot(a)["state"] == "running"
    assert mgr.snapshot(b)["state"] == "queued"
    assert mgr.wait(b, 20) == "done"
    sa, sb = mgr.store.get(a).status(), mgr.store.get(b).status()
    assert sa["finished"] <= sb["started"]  # b started only after a ended


def test_cancel_stops_within_a_step(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    rid = mgr.submit(_spec(steps=10_000, delay=0.05))
    while mgr.snapshot(rid)["iteration"] < 3:
        time.sleep(0.01)
    mgr.cancel(rid)
    t0 = time.time()
    assert mgr.wait(rid, 5) == "cancelled"
    assert time.time() - t0 < 0.5  # one step is 0.05 s
    assert mgr.snapshot(rid)["iteration"] < 20


def test_a_light_job_does_not_wait_behind_a_heavy_one(tmp_path, monkeypatch):
    import engine.jobs.manager as manager_module

    monkeypatch.setitem(WORKFLOWS, "fake_light", "tests.jobs._fake_workflows")
    monkeypatch.setattr(manager_module, "LIGHT_KINDS", frozenset({"fake_light"}))
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    heavy = mgr.submit(_spec(steps=60, delay=0.05))
    heavy2 = mgr.submit(_spec(steps=3))
    light = mgr.submit({"kind": "fake_light", "params": {"steps": 3}})
    assert mgr.wait(light, 10) == "done"
    assert mgr.snapshot(heavy)["state"] == "running"  # the light one ran beside it, not after it
    assert mgr.snapshot(heavy2)["state"] == "queued"  # two heavy jobs still take turns
    assert mgr.store.get(light).status()["lane"] == "light"
    mgr.cancel(heavy)
    assert mgr.wait(heavy2, 20) == "done"


def test_cancel_while_queued(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    a = mgr.submit(_spec(steps=10, delay=0.02))
    b = mgr.submit(_spec(steps=10))
    mgr.cancel(b)
    # cancelled at once, in memory and on disk, not when the run ahead of it ends
    assert mgr.snapshot(b)["state"] == "cancelled" and mgr.is_active(a)
    assert mgr.store.get(b).status()["state"] == "cancelled"
    assert mgr.wait(b, 10) == "cancelled"
    assert mgr.store.get(b).metrics() == []
    assert mgr.wait(a, 10) == "done"
    assert mgr.snapshot(b)["state"] == "cancelled"  # the worker skipped it without touching it again


def test_failure_is_recorded(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    rid = mgr.submit(_spec(fail=True))
    assert mgr.wait(rid, 10) == "failed"
    run = mgr.store.get(rid)
    msg = run.status()["message"]
    # the user reads a plain sentence; the exception and its traceback are in the run folder
    assert msg == mgr.snapshot(rid)["message"]
    assert msg.startswith("the run stopped at iteration 0 because of an internal error"), msg
    assert "RuntimeError" not in msg and "/" not in msg
    err = (run.path / "error.txt").read_text()
    assert "Traceback" in err and "RuntimeError: planned failure" in err


def test_unknown_kind_is_refused_at_submit(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    with pytest.raises(ValueError, match="unknown workflow"):
        mgr.submit({"kind": "nope", "params": {}})


# the fake worker thread dies abruptly at step 7, as a killed server would leave it
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_restart_marks_interrupted_and_resume_continues(tmp_path):
    store = RunStore(tmp_path)
    mgr = JobManager(store, devices=["cpu"])
    rid = mgr.submit(_spec(steps=12, stop_at=7, checkpoint_every=5))
    # the worker thread "dies" at step 7: the run folder says running, as after a server crash
    deadline = time.time() + 10
    while store.get(rid).status().get("iteration", 0) < 7 and time.time() < deadline:
        time.sleep(0.02)
        if mgr.snapshot(rid)["iteration"] >= 7:
            break
    time.sleep(0.2)
    run = store.get(rid)
    run.set_status(state="running")  # what a killed server leaves behind
    mgr2 = JobManager(store, devices=["cpu"])  # a new server process
    assert mgr2.snapshot(rid)["state"] == "interrupted"
    assert [r["iteration"] for r in run.metrics()][-1] == 7
    # the resumed run must not die again: clear the planned crash before the worker reads the spec
    spec = run.spec
    spec["params"]["stop_at"] = None
    run.write_json("spec.json", spec)
    run._spec = None
    mgr2.resume(rid)
    assert mgr2.wait(rid, 10) == "done"
    its = [r["iteration"] for r in store.get(rid).metrics()]
    assert its == list(range(1, 13))  # 6, 7 were redone after the checkpoint at 5, once each
    assert store.get(rid).read_json("summary.json")["total"] == pytest.approx(12.0)

"""Faults: a killed server, a full disk, a second server on the same runs folder, planted links.

The kill and second-server tests run a real JobManager in a child process on a tiny counting
workflow (a few seconds each, most of it importing torch).
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from engine.core.errors import InputError
from engine.jobs import JobManager, run_inline
from engine.jobs.manager import failure_message, plain_message
from engine.jobs.registry import WORKFLOWS
from engine.runs import RunStore
from engine.runs.store import Run
from tests.jobs._procs import alive

ROOT = Path(__file__).resolve().parents[2]
KIND = "counter"
HOLD_ENV = "INVERSE_STUDIO_TEST_HOLD"  # set in the child only: it parks its run at ``hold_at``


def counter(ctx) -> dict:
    """Count to ``steps``, checkpointing every ``checkpoint_every``; it leaves its log to the manager.

    Unlike ``_fake_workflows`` it never cuts metrics.jsonl itself, so a duplicate row here is one that
    the resume path let through.
    """
    p = ctx.params
    steps, every, delay = int(p.get("steps", 10)), int(p.get("checkpoint_every", 1000)), float(p.get("delay", 0))
    start = int(ctx.run.load_checkpoint()["step"]) if ctx.resume else 0
    for it in range(start + 1, steps + 1):
        ctx.check()
        time.sleep(delay)
        ctx.publish(it, {"loss": 1.0 / it})
        if it % every == 0:
            ctx.run.save_checkpoint({"step": torch.tensor(it)})
        while os.environ.get(HOLD_ENV) and it == p.get("hold_at"):  # the child is killed while it waits here
            ctx.check()
            time.sleep(0.02)
    return {"last": steps}


_CHILD = f"""
import json, sys, time
from engine.jobs.registry import WORKFLOWS
WORKFLOWS[{KIND!r}] = "tests.jobs.test_faults:counter"
from engine.jobs import JobManager
from engine.runs import RunStore
mgr = JobManager(RunStore(sys.argv[1]), devices=["cpu"], isolation=sys.argv[3])
rid = mgr.submit({{"kind": {KIND!r}, "params": json.loads(sys.argv[2])}})
print(rid, flush=True)
while sys.argv[3] == "process" and not mgr.worker_pids():
    time.sleep(0.01)
print(mgr.worker_pids().get("cpu", 0), flush=True)
mgr.wait(rid, 120)
"""


@pytest.fixture(autouse=True)
def counter_kind(monkeypatch):
    monkeypatch.setitem(WORKFLOWS, KIND, "tests.jobs.test_faults:counter")


def _spec(**params) -> dict:
    return {"kind": KIND, "params": params}


def _iterations(run: Run) -> list[int]:
    return [r["iteration"] for r in run.metrics()]


def _start_child(root: Path, isolation: str = "thread", **params) -> tuple[subprocess.Popen, str, int]:
    """A server process running one counter run that parks at ``hold_at``.

    Returns it, the run id and the process id of its job process (0 with ``isolation="thread"``).
    """
    env = {**os.environ, HOLD_ENV: "1", "PYTHONPATH": str(ROOT), "INVERSE_STUDIO_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), json.dumps(params), isolation], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rid = proc.stdout.readline().strip()
    assert rid, proc.stderr.read() if proc.poll() is not None else "no run id from the child"
    job_pid = int(proc.stdout.readline().strip() or 0)
    run = RunStore(root).get(rid)
    deadline = time.time() + 60
    while (not _iterations(run) or _iterations(run)[-1] < params["hold_at"]) and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    assert _iterations(run)[-1] == params["hold_at"]
    return proc, rid, job_pid


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


# --- a killed server -----------------------------------------------------------------------------
@pytest.mark.parametrize("hold_at, checkpoint_every, ck_step, isolation",
                         [(3, 1000, None, "thread"), (7, 5, 5, "thread"), (7, 5, 5, "process")],
                         ids=["before-first-checkpoint", "after-a-checkpoint", "job-process"])
def test_sigkill_then_resume_logs_each_iteration_once(tmp_path, hold_at, checkpoint_every, ck_step, isolation):
    proc, rid, job_pid = _start_child(tmp_path, isolation, steps=12, hold_at=hold_at,
                                      checkpoint_every=checkpoint_every)
    _kill(proc)
    if isolation == "process":
        # the job process, parked in a step that publishes nothing, notices its server is gone and ends
        assert job_pid > 0
        t_end = time.time() + 10
        while alive(job_pid) and time.time() < t_end:
            time.sleep(0.05)
        assert not alive(job_pid)
    store = RunStore(tmp_path)
    run = store.get(rid)
    assert run.status()["state"] == "running"  # what the killed server left behind
    assert not run.is_locked()  # the kernel dropped the dead process's lock
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 99, "lo')  # a row torn by the kill

    mgr = JobManager(store, devices=["cpu"])
    assert mgr.snapshot(rid)["state"] == "interrupted"
    assert (run.checkpoint_info() or {}).get("iteration") == ck_step
    mgr.resume(rid)  # with no checkpoint it is not refused: it starts again from 0
    assert mgr.wait(rid, 30) == "done"
    its = _iterations(run)
    assert its == list(range(1, 13))  # strictly increasing, no duplicate, no torn row
    assert [r["iteration"] for r in mgr.snapshot(rid)["history"]] == its
    assert not run.is_locked()


def test_resume_without_checkpoint_empties_the_log(tmp_path):
    run = RunStore(tmp_path).create(_spec(steps=4))
    for it in (0, 1, 2):
        run.log({"iteration": it, "loss": 1.0})
    run.log({"note": "a row without an iteration"})
    run.save_snapshot(2, torch.zeros(4, 4).numpy())
    run.set_status(state="interrupted")
    state, _ = run_inline(run, resume=True)
    assert state == "done" and _iterations(run) == [1, 2, 3, 4] and run.snapshots() == []


# --- a full disk --------------------------------------------------------------------------------
def _full_from(monkeypatch, iteration: int, *, new_files: bool = False) -> None:
    """Appends to metrics.jsonl (and, with ``new_files``, every new file) fail with ENOSPC from ``iteration``."""
    real_log, real_mkstemp = Run.log, tempfile.mkstemp
    full = {"on": False}

    def log(self, row):
        if row.get("iteration", 0) >= iteration:
            full["on"] = True
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / "metrics.jsonl"))
        real_log(self, row)

    def mkstemp(*a, **k):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*a, **k)

    monkeypatch.setattr(Run, "log", log)
    if new_files:
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("new_files", [False, True], ids=["log-append", "every-new-file"])
def test_full_disk_fails_the_run_plainly_and_resume_works(tmp_path, monkeypatch, new_files):
    store = RunStore(tmp_path)
    mgr = JobManager(store, devices=["cpu"])
    want = "the disk is full: the run stopped at iteration 5; free space and press Resume"
    with pytest.MonkeyPatch.context() as full:
        _full_from(full, 6, new_files=new_files)
        rid = mgr.submit(_spec(steps=10, checkpoint_every=3))
        assert mgr.wait(rid, 20) == "failed"
        run = store.get(rid)
        assert mgr.snapshot(rid)["message"] == want
        assert run.status()["state"] == "failed" and run.status()["message"] == want  # on disk too
        assert not run.is_locked()
        if new_files:  # still full: the resume says so instead of half-cutting the log
            with pytest.raises(InputError, match="^the disk is full, so run .* cannot be resumed"):
                mgr.resume(rid)
            assert not run.is_locked() and _iterations(run) == [1, 2, 3, 4, 5]
        else:
            assert "OSError" in run.file("error.txt").read_text()
    mgr.resume(rid)  # space was freed
    assert mgr.wait(rid, 20) == "done"
    assert _iterations(run) == list(range(1, 11))  # 4 and 5 were redone after the checkpoint at 3, once each
    assert run.status()["message"] == ""


def test_full_disk_inside_torch_save_is_recognised():
    class Full(io.RawIOBase):  # room for the first two writes only
        writes = 0

        def writable(self):
            return True

        def write(self, b):
            self.writes += 1
            if self.writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(b)

    with pytest.raises(RuntimeError) as info:  # torch wraps the OSError of the file it writes
        torch.save({"w": torch.ones(100)}, Full())
    assert failure_message(info.value, 12).startswith("the disk is full: the run stopped at iteration 12")


def test_messages_carry_no_paths_or_exception_names(tmp_path):
    err = OSError(errno.EACCES, "Permission denied", str(tmp_path / "x" / "status.json"))
    msg = failure_message(err, 4)
    assert msg == "the run folder cannot be written (permission denied): the run stopped at iteration 4"
    assert failure_message(KeyError("w"), 2) == ("the run stopped at iteration 2 because of an internal error; "
                                                "the details are in error.txt in the run folder")
    assert plain_message(f"cannot read '{tmp_path}/in/scan.png': not an image.\nmore") == \
        "cannot read 'scan.png': not an image."
    assert plain_message("a 1/2 split and/or ./rel/path.txt") == "a 1/2 split and/or path.txt"
    assert failure_message(InputError(f"{tmp_path}/a.png: not a PNG"), 0) == "a.png: not a PNG"


# --- a second server on the same runs folder ------------------------------------------------------
def test_second_server_leaves_a_running_run_alone(tmp_path):
    proc, rid, _ = _start_child(tmp_path, steps=8, hold_at=4, checkpoint_every=2)
    try:
        store = RunStore(tmp_path)
        run = store.get(rid)
        mgr2 = JobManager(store, devices=["cpu"])  # starts while the first server runs rid
        assert run.status()["state"] == "running"
        assert mgr2.snapshot(rid)["state"] == "running"
        assert run.is_locked()
        with pytest.raises(InputError, match="being run by another process") as info:
            mgr2.resume(rid)
        assert str(tmp_path) not in str(info.value) and run.status()["state"] == "running"
        assert _iterations(run) == [1, 2, 3, 4]  # the refused resume did not touch the log
    finally:
        _kill(proc)
    mgr3 = JobManager(store, devices=["cpu"])  # the first server is gone now
    assert mgr3.snapshot(rid)["state"] == "interrupted"
    mgr3.resume(rid)
    assert mgr3.wait(rid, 20) == "done" and _iterations(run) == list(range(1, 9))


def test_resume_of_a_run_queued_here_is_refused(tmp_path):
    mgr = JobManager(RunStore(tmp_path), devices=["cpu"])
    a = mgr.submit(_spec(steps=50, delay=0.02))
    b = mgr.submit(_spec(steps=2))
    with pytest.raises(InputError, match=f"^run {b} is still queued"):
        mgr.resume(b)
    mgr.cancel(a)
    assert mgr.wait(b, 20) == "done" and mgr.wait(a, 20) == "cancelled"


def test_inline_run_is_refused_while_locked(tmp_path):
    run = RunStore(tmp_path).create(_spec(steps=2))
    with run.try_lock():
        with pytest.raises(InputError, match="another process"):
            run_inline(run)
    assert run_inline(run)[0] == "done"


# --- planted links --------------------------------------------------------------------------------
@pytest.fixture
def victim(tmp_path) -> Path:
    p = tmp_path / "outside" / "victim.txt"
    p.parent.mkdir()
    p.write_text("keep")
    return p


def test_planted_temp_file_link_is_not_followed(tmp_path, victim, monkeypatch):
    run = RunStore(tmp_path / "runs").create(_spec())
    for name in (".status.json.planted.tmp", ".metrics.jsonl.planted.tmp", ".checkpoint.pt.planted.tmp"):
        os.symlink(victim, run.path / name)
    # every mkstemp tries the planted name first: O_EXCL refuses it and the next name is taken
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: iter(["planted", *[f"n{i}" for i in range(9)]]))
    run.set_status(state="interrupted", message="x" * 1000)
    run.log({"iteration": 1})
    run.truncate_metrics(5)
    run.save_checkpoint({"step": torch.tensor(1)})
    assert victim.read_text() == "keep"
    assert run.status()["message"] == "x" * 1000 and _iterations(run) == [1]
    assert int(run.load_checkpoint()["step"]) == 1
    assert all((run.path / n).is_symlink() for n in
               (".status.json.planted.tmp", ".metrics.jsonl.planted.tmp", ".checkpoint.pt.planted.tmp"))


def test_planted_metrics_link_is_not_followed(tmp_path, victim):
    store = RunStore(tmp_path / "runs")
    run = store.create(_spec(steps=3))
    victim.write_text('{"iteration": 7, "secret": 1}\n')
    os.symlink(victim, run.path / "metrics.jsonl")
    assert run.metrics() == []  # not read through the link
    state, _ = run_inline(run)
    assert state == "failed"
    assert run.status()["message"].startswith("a file in the run folder is a link, which runs never follow")
    assert victim.read_text() == '{"iteration": 7, "secret": 1}\n'
    mgr = JobManager(store, devices=["cpu"])
    mgr.resume(run.id)  # the resume replaces the link by a fresh, empty log
    assert mgr.wait(run.id, 20) == "done"
    assert not (run.path / "metrics.jsonl").is_symlink() and _iterations(run) == [1, 2, 3]
    assert victim.read_text() == '{"iteration": 7, "secret": 1}\n'


def test_planted_error_and_lock_links_are_not_followed(tmp_path, victim):
    run = RunStore(tmp_path / "runs").create(_spec(steps=3))
    os.symlink(victim, run.path / "error.txt")
    os.symlink(victim, run.path / ".lock")
    spec = run.spec
    spec["params"]["steps"] = "three"  # int("three") in the workflow: an internal error
    run.write_json("spec.json", spec)
    run._spec = None
    state, _ = run_inline(run)
    assert state == "failed" and "Traceback" in run.file("error.txt").read_text()
    assert not (run.path / "error.txt").is_symlink() and not (run.path / ".lock").is_symlink()
    assert victim.read_text() == "keep"


def test_linked_run_folder_is_neither_listed_nor_opened(tmp_path):
    outside = RunStore(tmp_path / "elsewhere").create(_spec())
    outside.set_status(state="running")
    store = RunStore(tmp_path / "runs")
    mine = store.create(_spec())
    os.symlink(outside.path, store.root / outside.id)  # a valid run id, pointing out of the runs folder
    assert [r.id for r in store.list()] == [mine.id]
    with pytest.raises(InputError, match="no run"):
        store.get(outside.id)
    JobManager(store, devices=["cpu"])
    assert outside.status()["state"] == "running"  # the start-up check did not write through the link

"""Run folders: atomic status, metrics log, arrays without pickle, snapshots, checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import threading

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.runs import RunStore, default_runs_root


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("INVERSE_STUDIO_RUNS", str(tmp_path / "r"))
    assert default_runs_root() == tmp_path / "r"
    monkeypatch.delenv("INVERSE_STUDIO_RUNS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_runs_root() == tmp_path / "xdg" / "inverse-studio" / "runs"


def test_create_list_get(tmp_path):
    store = RunStore(tmp_path)
    a = store.create({"kind": "restore", "params": {"x": 1}}, label="My Image!")
    b = store.create({"kind": "cdi", "params": {}})
    assert {r.id for r in store.list()} == {a.id, b.id}
    assert store.get(a.id).spec["params"] == {"x": 1}
    assert a.status()["state"] == "queued"
    assert "my-image" in a.id
    with pytest.raises(InputError):
        store.get("../etc")
    with pytest.raises(InputError):
        store.get("20260101-000000-nothing-abcdef")


def test_status_is_replaced_atomically(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    stop = threading.Event()
    seen_bad = []

    def reader():
        while not stop.is_set():
            txt = (run.path / "status.json").read_text()
            try:
                json.loads(txt)
            except json.JSONDecodeError:
                seen_bad.append(txt)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(300):
        run.set_status(iteration=i, message="x" * (i % 50))
    stop.set()
    t.join()
    assert not seen_bad
    assert run.status()["iteration"] == 299
    assert not [p for p in os.listdir(run.path) if p.startswith(".status")]  # no temp files left


def test_metrics_skip_torn_line_and_truncate(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    for i in range(1, 6):
        run.log({"iteration": i, "loss": 1 / i})
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 6, "lo')  # crash mid-write
    assert [r["iteration"] for r in run.metrics()] == [1, 2, 3, 4, 5]
    run.truncate_metrics(3)
    assert [r["iteration"] for r in run.metrics()] == [1, 2, 3]


def test_arrays_images_snapshots_checkpoint(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    x = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    run.save_array("observed", x)
    np.testing.assert_array_equal(run.load_array("observed"), x)
    with pytest.raises(ValueError):
        run.save_array("../evil", x)
    run.save_image("result", x)
    assert (run.path / "result.png").exists()
    run.save_snapshot(20, x)
    run.save_snapshot(3, x)
    assert [i for i, _ in run.snapshots()] == [3, 20]
    run.save_checkpoint({"iteration": torch.tensor(7), "w": torch.ones(3)})
    ck = run.load_checkpoint()
    assert int(ck["iteration"]) == 7


def test_checkpoint_with_code_is_refused(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, run.path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):
        run.load_checkpoint()


def test_checkpoint_stands_for_the_last_logged_row_and_resume_cuts_back_to_it(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    img = np.zeros((4, 4), np.float32)
    assert run.prepare_resume() is None and run.checkpoint_info() is None
    for i in range(1, 8):
        run.log({"iteration": i, "loss": 1 / i})
        if i in (4, 6):
            run.save_snapshot(i, img)
        if i == 5:
            run.save_checkpoint({"w": torch.ones(2)})
    assert run.checkpoint_info()["iteration"] == 5
    assert set(run.load_checkpoint()) == {"w"}  # the bookkeeping stays inside the store
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 8, "lo')  # torn by a crash
    assert run.prepare_resume() == 5
    assert [r["iteration"] for r in run.metrics()] == [1, 2, 3, 4, 5]
    assert [i for i, _ in run.snapshots()] == [4]
    assert run.last_logged_iteration() == 5
    assert run.prepare_resume() == 5  # twice is the same as once


def test_checkpoint_without_bookkeeping(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    torch.save({"iteration": torch.tensor(3)}, run.path / "checkpoint.pt")  # an older run's checkpoint
    assert run.checkpoint_info() == {"iteration": 3}
    run.log({"iteration": 1, "t": 10.0})
    run.log({"iteration": 2, "t": 20.0})
    run.log({"iteration": 3, "t": 30.0})
    torch.save({"w": torch.ones(1)}, run.path / "checkpoint.pt")
    os.utime(run.path / "checkpoint.pt", (25.0, 25.0))  # saved between rows 2 and 3
    assert run.checkpoint_info()["iteration"] == 2


def test_status_on_a_full_disk_is_rewritten_in_place(tmp_path, monkeypatch):
    import errno
    import tempfile

    run = RunStore(tmp_path).create({"kind": "restore"})
    run.set_status(state="running", message="")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    run.set_status(state="failed", message="the disk is full")
    assert run.status()["state"] == "failed" and run.status()["message"] == "the disk is full"
    with pytest.raises(OSError):  # no old file to reuse: the error stands
        run.write_json("summary.json", {})
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "no")))
    with pytest.raises(PermissionError):  # only a full disk falls back
        run.set_status(state="done")


def test_run_lock_is_exclusive_until_released(tmp_path):
    run = RunStore(tmp_path).create({"kind": "restore"})
    assert not run.is_locked()
    lock = run.try_lock()
    assert lock is not None
    assert run.try_lock() is None and run.is_locked()  # a second holder, even in this process, is refused
    lock.release()
    lock.release()  # idempotent
    assert not run.is_locked()
    with run.try_lock() as again:
        assert again is not None and run.is_locked()
    assert not run.is_locked()


def test_links_are_not_read(tmp_path):
    run = RunStore(tmp_path / "runs").create({"kind": "restore"})
    outside = tmp_path / "other.json"
    outside.write_text('{"state": "done", "secret": 1}')
    (run.path / "status.json").unlink()
    os.symlink(outside, run.path / "status.json")
    assert run.status() == {"state": "unknown"}
    torch.save({"w": torch.ones(1)}, tmp_path / "ck.pt")
    os.symlink(tmp_path / "ck.pt", run.path / "checkpoint.pt")
    assert run.load_checkpoint() is None and run.prepare_resume() is None

"""Run folders: atomic status, metrics log, arrays without pickle, snapshots, checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time

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


# --- names, delete, export ------------------------------------------------------------------------------

def test_default_name_is_kind_input_and_date(tmp_path):
    store = RunStore(tmp_path)
    run = store.create({"kind": "restore", "params": {"label": "camera"}}, label="camera")
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.status()["created"]))
    assert run.name == f"Restoration · camera · {date}"
    sweep = store.create({"kind": "gpr_sweep", "params": {"n": 32, "model": "cdp"}})
    assert sweep.name.startswith("GPR sweep · cdp, n=32 · ")
    xray = store.create({"kind": "xray", "params": {"images": [{"array": "img0"}, {"array": "img1"}]}})
    assert xray.input_label() == "2 images"
    fed = store.create({"kind": "federated", "params": {"data": "/srv/data/cxr-small/"}})
    assert fed.input_label() == "cxr-small"  # the folder's name, never the server's path
    mri = store.create({"kind": "mri", "params": {"source": "measured"}})
    assert mri.input_label() == "measured k-space"
    odd = store.create({"kind": "cdi", "params": {"label": "a/b\tc" + "x" * 100}})
    assert "/" not in odd.name and "\t" not in odd.name and len(odd.name) <= 80


def test_rename_is_kept_and_validated(tmp_path):
    store = RunStore(tmp_path)
    run = store.create({"kind": "restore", "params": {"label": "camera"}})
    assert run.rename("  σ = 25, cpu preset  ") == "σ = 25, cpu preset"
    again = store.get(run.id)
    assert again.name == "σ = 25, cpu preset" and again.path == run.path  # the folder keeps its id
    for bad in ["", "   ", "x" * 81, "two\nlines", "tab\there", "../etc/passwd", "a\\b", None]:
        with pytest.raises(InputError):
            run.rename(bad)  # type: ignore[arg-type]
    assert store.get(run.id).name == "σ = 25, cpu preset"
    assert run.rename("x" * 80) == "x" * 80
    (run.path / "name.json").write_text('{"name": "bad\\nname"}')  # edited by hand
    assert run.name == run.default_name()


def test_delete_removes_the_folder_but_never_a_locked_run(tmp_path):
    store = RunStore(tmp_path / "runs")
    keep = store.create({"kind": "restore"})
    run = store.create({"kind": "restore"})
    run.save_array("observed", np.zeros((4, 4), np.float32))
    lock = run.try_lock()
    with pytest.raises(InputError, match="queued or running"):
        store.delete(run.id)
    assert run.path.is_dir()
    lock.release()
    store.delete(run.id)
    assert not run.path.exists() and [r.id for r in store.list()] == [keep.id]
    assert os.listdir(store.root) == [keep.id]  # nothing left behind
    with pytest.raises(InputError):
        store.delete(run.id)
    with pytest.raises(InputError):
        store.delete("../runs")


def test_delete_never_follows_links(tmp_path):
    store = RunStore(tmp_path / "runs")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    run = store.create({"kind": "restore"})
    os.symlink(outside, run.path / "arrays")  # a folder link inside the run
    os.symlink(outside / "precious.txt", run.path / "summary.json")
    store.delete(run.id)
    assert (outside / "precious.txt").read_text() == "keep me"
    linked = store.create({"kind": "restore"})  # a run folder that is itself a link
    target = tmp_path / "elsewhere"
    linked.path.rename(target)
    os.symlink(target, linked.path)
    with pytest.raises(InputError):
        store.delete(linked.id)
    assert (target / "spec.json").exists()


def test_export_zip_has_the_folder_without_lock_and_links(tmp_path):
    import io
    import zipfile

    store = RunStore(tmp_path / "runs")
    run = store.create({"kind": "restore", "params": {"label": "camera"}})
    run.save_array("observed", np.ones((3, 3), np.float32))
    run.log({"iteration": 1, "loss": 0.5})
    run.write_json("summary.json", {"es_psnr": 20.0})
    run.rename("my run")
    secret = tmp_path / "secret.txt"
    secret.write_text("not in the run")
    os.symlink(secret, run.path / "error.txt")
    os.symlink(tmp_path, run.path / "snapshots")
    with run.try_lock():
        data = run.export_zip()  # a running run can be exported too
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {f"{run.id}/{n}" for n in ("spec.json", "status.json", "metrics.jsonl", "summary.json",
                                                   "name.json", "arrays/observed.npy")}
        with zf.open(f"{run.id}/arrays/observed.npy") as f:
            np.testing.assert_array_equal(np.load(io.BytesIO(f.read())), np.ones((3, 3), np.float32))
        assert json.loads(zf.read(f"{run.id}/name.json"))["name"] == "my run"


def test_array_shape_reads_the_header_only(tmp_path):
    run = RunStore(tmp_path).create({"kind": "cdi"})
    run.save_array("intensity", np.zeros((2, 16, 8), np.float32))
    assert run.array_shape("intensity") == (2, 16, 8)
    assert run.array_shape("missing") is None
    (run.path / "arrays" / "torn.npy").write_bytes(b"\x93NUMPY")
    assert run.array_shape("torn") is None
    os.symlink(run.path / "arrays" / "intensity.npy", run.path / "arrays" / "link.npy")
    assert run.array_shape("link") is None

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

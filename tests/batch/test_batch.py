"""``inverse-studio batch`` on a local Ray (one start for the module), and its no-Ray message."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.runs.store import RunStore

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the whole module: the command reuses it and leaves it running."""
    import os

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = tmp_path / f"image {i}.png"
        Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(p)
        paths.append(str(p))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    return [paths[0], str(bad), paths[1]]


def _batch(out):
    return json.loads((out / "batch.json").read_text(encoding="utf-8"))


def test_bad_input_fails_alone_and_rerun_skips_done(local_ray, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", "restore", *inputs, "--out", str(out), "--simulate", "--max-iters", "6", "--quiet"]
    assert main(argv) == 1
    doc = _batch(out)
    assert doc["engine"] == "ray" and doc["kind"] == "restore"
    assert doc["ray_version"] == ray.__version__
    assert doc["settings"]["options"]["max_iters"] == 6
    states = [it["state"] for it in doc["items"]]
    assert states == ["done", "failed", "done"]
    assert doc["done"] == 2 and doc["failed"] == 1
    bad = doc["items"][1]
    assert "broken.png" in bad["message"] and str(tmp_path) not in bad["message"]
    for it in (doc["items"][0], doc["items"][2]):
        assert it["numbers"]["stopped_iteration"] == 6
        assert np.isfinite(it["numbers"]["es_psnr"])
        assert it["task_seconds"] > 0
    # run folders: sanitised names, listed and readable by the run store
    assert doc["items"][0]["run"].split("-")[2:4] == ["0000", "image"]
    runs = {r.id: r for r in RunStore(out).list()}
    for it in (doc["items"][0], doc["items"][2]):
        run = runs[it["run"]]
        assert run.kind == "restore" and run.status()["state"] == "done"
        assert run.read_json("summary.json")["stopped_iteration"] == 6
        assert run.has_array("result") and len(run.metrics()) == 6
    # rerun: the done items are kept as they were (same run folders, same spec), the failed one retried
    before = {it["run"]: (out / it["run"] / "summary.json").stat().st_mtime_ns
              for it in doc["items"] if it["state"] == "done"}
    assert main(argv) == 1
    doc2 = _batch(out)
    assert [it["state"] for it in doc2["items"]] == states
    for run_id, mtime in before.items():
        assert (out / run_id / "summary.json").stat().st_mtime_ns == mtime
    # the same command with the other inputs is refused
    assert main(["batch", "restore", inputs[0], "--out", str(out), "--quiet"]) == 2
    assert "other inputs" in capsys.readouterr().err


def test_all_good_exits_zero_pr(local_ray, tmp_path):
    from engine.cdi.simulate import simulate_pattern

    pattern = simulate_pattern(shape=(32, 32), seed=1).intensity
    p = tmp_path / "pattern.npy"
    np.save(p, np.asarray(pattern, np.float32))
    out = tmp_path / "pr"
    assert main(["batch", "pr", str(p), "--out", str(out), "--starts", "2", "--recipe", "ER**10",
                 "--quiet"]) == 0
    doc = _batch(out)
    (item,) = doc["items"]
    assert item["state"] == "done", item["message"]
    assert np.isfinite(item["numbers"]["llk_per_pixel"])
    run = RunStore(out).list()[0]
    assert run.kind == "cdi" and (run.path / "object.npz").exists()


def test_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    assert main(["batch", "restore", str(img), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'inverse-studio[distributed]'" in err[0]


def test_bad_usage_exits_two(tmp_path, capsys):
    assert main(["batch", "restore", "--out", str(tmp_path / "o")]) == 2
    assert main(["batch", "pr", "x.npy", "--out", str(tmp_path / "o"), "--starts", "0"]) == 2
    assert main(["batch", "xray", "x.png", "--out", str(tmp_path / "o"), "--window", "40"]) == 2
    assert not (tmp_path / "o").exists()

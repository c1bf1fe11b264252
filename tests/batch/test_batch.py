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


def test_xray_films_bad_one_fails_with_its_message(local_ray, tmp_path, capsys):
    from tests.ui.test_xray_page import PATIENT, chest_dicom

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    lungs = np.exp(-(((xx - 0.3) / 0.14) ** 2 + ((yy - 0.5) / 0.3) ** 2)) + \
        np.exp(-(((xx - 0.7) / 0.14) ** 2 + ((yy - 0.5) / 0.3) ** 2))
    film = np.clip(0.75 - 0.5 * lungs + 0.03 * rng.standard_normal(lungs.shape), 0, 1)
    png = tmp_path / "film a.png"
    Image.fromarray((film * 255).astype(np.uint8)).save(png)
    dcm = tmp_path / "chest.dcm"
    dcm.write_bytes(chest_dicom(side=64))
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"this is not a film")
    out = tmp_path / "xr"
    assert main(["batch", "xray", str(png), str(bad), str(dcm), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    doc = _batch(out)
    assert doc["kind"] == "xray" and doc["settings"]["options"]["model"] == "default"
    assert [it["state"] for it in doc["items"]] == ["done", "failed", "done"]
    assert [it["input"] for it in doc["items"]] == ["film a.png", "scan.png", "chest.dcm"]
    assert doc["done"] == 2 and doc["failed"] == 1
    failed = doc["items"][1]
    assert failed["message"] == "scan.png: not a DICOM, PNG or JPEG file"
    assert failed["numbers"] == {} and f"item 1 (scan.png): {failed['message']}" in err
    runs = {r.id: r for r in RunStore(out).list()}
    for it in (doc["items"][0], doc["items"][2]):
        assert it["message"] == ""
        assert it["numbers"]["label"] in ("NORMAL", "PNEUMONIA")
        assert 0.0 <= it["numbers"]["probability"] <= 1.0
        assert 0.0 < it["numbers"]["threshold"] < 1.0
        run = runs[it["run"]]
        assert run.kind == "xray" and run.status()["state"] == "done"
        (res,) = run.read_json("summary.json")["results"]
        assert res["probability"] == it["numbers"]["probability"]
    # the DICOM's identifiers stay out of the run folder: only the allowlisted header facts are stored
    spec = (out / doc["items"][2]["run"] / "spec.json").read_text(encoding="utf-8")
    assert not [v for v in PATIENT.values() if v in spec]
    # the bad film is refused while it is read, before a run folder is made for it
    assert not (out / failed["run"]).exists()


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

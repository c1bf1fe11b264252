"""AppTest of the Restoration page: set up, run a short restoration, see results, bad uploads."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "restoration.py")


def _wait_done(at: AppTest, timeout: float = 240) -> str:
    from ui.jobs import manager

    rid = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    return manager().wait(rid, timeout)


def _small_fast(at: AppTest) -> AppTest:
    at.selectbox(key="size").set_value(64)
    at.selectbox(key="preset").set_value("fast-preview")
    at.run()
    at.number_input(key="max_iters").set_value(60)
    at.number_input(key="patience").set_value(20)
    at.number_input(key="window").set_value(5)
    return at.run()


def test_opens_on_a_bundled_sample():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="sample").value == "astronaut"
    captions = [c.value for c in at.caption]
    assert any("Gaussian noise" in c for c in captions)  # the corruption is described


def test_run_shows_curves_then_result():
    at = _small_fast(AppTest.from_file(PAGE, default_timeout=60).run())
    at.button(key="run").click().run()
    assert not at.exception
    assert "run" in at.query_params
    assert _wait_done(at) == "done"
    at.run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["PNG", "16-bit TIFF", "NPZ", "Metrics CSV", "Config JSON"]
    import json

    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert {"Loss", "PSNR vs reference (dB)", "ES variance"} <= set(titles)
    from ui.jobs import manager

    summary = manager().store.get(at.query_params["run"]).read_json("summary.json")
    labels = [m.label for m in at.metric]
    # the page calls t* a detected stop only when the detector fired
    if summary["es_fired"]:
        assert "Detected stop t*" in labels
    else:
        assert summary["stop"] == "budget" and "Detected stop t*" not in labels
        assert "Candidate t* (not detected)" in labels
        assert any("ran out before the detector fired" in i.value for i in at.info)


def test_upload_that_is_not_an_image_is_refused():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="source").set_value("Upload").run()
    # AppTest cannot drive file_uploader; check the decoder the page uses with the same bytes
    from engine.core.errors import InputError
    from engine.core.imageio import read_image

    with pytest.raises(InputError, match="not a readable image"):
        read_image(b"GIF89a-not-really", "photo.png")
    buf = io.BytesIO()
    np.save(buf, np.full((16, 16), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_image(buf.getvalue(), "x.npy")
    assert any("Upload an image" in i.value for i in at.info)


def test_stop_button_cancels(monkeypatch):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="size").set_value(64)
    at.selectbox(key="preset").set_value("fast-preview").run()
    at.button(key="run").click().run()
    from ui.jobs import manager

    rid = at.query_params["run"]
    rid = rid[0] if isinstance(rid, list) else rid
    deadline = time.time() + 30
    while manager().snapshot(rid)["state"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    at.run()
    at.button(key=f"stop-{rid}").click().run()
    assert manager().wait(rid, 30) == "cancelled"


def _finished_run(params: dict, cancel_at: int | None = None) -> str:
    """A restoration run of a 16x16 image, run to its end in this thread (cancelled at ``cancel_at``)."""
    from engine.jobs.manager import run_inline
    from ui.jobs import manager

    clean = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    noisy = np.clip(clean + 0.1 * np.random.default_rng(1).standard_normal(clean.shape), 0, 1).astype(np.float32)
    spec = {"kind": "restore", "params": {"task": "denoise", "preset": "fast-preview", "stopping": "wmv",
                                          "label": "tiny", **params}}
    run = manager().store.create(spec, label="tiny")
    run.save_array("observed", noisy)
    run.save_array("reference", clean)
    ev = threading.Event()

    def on_publish(it: int, row: dict, extra: dict) -> None:
        if cancel_at is not None and it >= cancel_at:
            ev.set()

    run_inline(run, device="cpu", on_publish=on_publish, cancel_event=ev)
    return run.id


def _open(rid: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = rid
    return at.run()


def _captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_a_run_stopped_before_the_detector_says_so():
    rid = _finished_run({"max_iters": 200, "window": 3, "patience": 1000}, cancel_at=9)
    at = _open(rid)
    assert not at.exception
    from ui.jobs import manager

    t_star = manager().store.get(rid).read_json("summary.json")["es_iteration"]
    warnings = [w.value for w in at.warning]
    assert (f"You stopped the run at iteration 9 before the detector decided; the image below is the best "
            f"candidate so far, t* = {t_star}, not a detected stop.") in warnings
    caps = _captions(at)
    assert not any(c.startswith("Output at t*") for c in caps)
    assert any(c.startswith(f"Best candidate so far, t* = {t_star} (not a detected stop)") and "vs input" in c
               and "vs reference" in c for c in caps)
    assert any(c.startswith("Last output, iteration 9 ·") and "vs input" in c for c in caps)
    assert not any(m.label == "Detected stop t*" for m in at.metric)
    assert any(m.label == "Candidate t* (not detected)" for m in at.metric)


def test_a_run_out_of_budget_says_so():
    rid = _finished_run({"max_iters": 12, "window": 3, "patience": 1000})
    at = _open(rid)
    assert not at.exception
    assert any("ran out before the detector fired" in i.value and "minimum within the budget" in i.value
               for i in at.info)
    assert any(c.startswith("Output at t* = ") and "(minimum within the budget)" in c for c in _captions(at))


def test_a_run_stopped_before_the_window_filled_shows_the_filling():
    rid = _finished_run({"max_iters": 200, "window": 8, "patience": 1000}, cancel_at=3)
    at = _open(rid)
    assert not at.exception
    assert any("window filling 3/8" in i.value for i in at.info)
    assert any("before the detector had a variance" in w.value for w in at.warning)


def _live_chart_script() -> None:
    import streamlit as st

    from ui.widgets import live_chart

    n, scale = st.session_state.get("n", 2000), st.session_state.get("scale", 1.0)
    rows = [{"iteration": i, "loss": scale / i} for i in range(1, n + 1)]
    live_chart(st, rows, ["loss"], "Loss", key="c", log_y=True, marker=n // 2)


def test_live_chart_is_thinned_and_updated_in_place():
    import json

    from ui.views.curves import curve_figure, thin
    from ui.widgets import LIVE_POINTS

    at = AppTest.from_function(_live_chart_script, default_timeout=60).run()
    assert not at.exception
    first = at.session_state["_live_figs"]["c"][1]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["type"] == "scatter" and len(spec["data"][0]["x"]) == LIVE_POINTS
    assert spec["data"][0]["x"][-1] == 2000 and spec["layout"]["shapes"][0]["x0"] == 1000
    at.session_state["n"] = 30_000
    at.run()
    assert not at.exception
    assert at.session_state["_live_figs"]["c"][1] is first  # the same figure, its data replaced
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    x = spec["data"][0]["x"]
    assert len(x) == LIVE_POINTS and x[-1] == 30_000
    assert spec["layout"]["shapes"][0]["x0"] == 15_000 and spec["layout"]["annotations"][0]["text"] == "t* = 15000"
    # the log axis has the ticks a freshly built figure of the same curve would have
    rows = thin([{"iteration": i, "loss": 1.0 / i} for i in range(1, 30_001)], LIVE_POINTS)
    fresh = curve_figure(rows, ["loss"], "Loss", log_y=True, marker=15_000).layout.yaxis
    assert spec["layout"]["yaxis"]["tickvals"] == list(fresh.tickvals)
    assert spec["layout"]["yaxis"]["ticktext"] == list(fresh.ticktext)
    # another curve of the same length and the same marker (another run's) is not taken for this one
    at.session_state["scale"] = 10.0
    at.run()
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"][0] == 10.0


def test_a_run_stopped_before_its_first_checkpoint_can_be_restarted_without_duplicate_rows():
    from ui.jobs import manager

    rid = _finished_run({"max_iters": 30, "window": 3, "patience": 1000, "checkpoint_every": 10_000}, cancel_at=5)
    run = manager().store.get(rid)
    run.file("checkpoint.pt").unlink(missing_ok=True)  # killed before any checkpoint was written
    run.set_status(state="interrupted", message="the server stopped during this run; resume it")
    at = _open(rid)
    assert not at.exception
    (restart,) = [b for b in at.button if b.label == "Restart"]
    restart.click().run()
    assert not at.exception
    assert manager().wait(rid, 120) == "done"
    its = [r["iteration"] for r in run.metrics()]
    assert its == sorted(set(its)) and its[-1] == 30, its


def test_a_run_folder_without_its_input_image_is_said_so():
    from ui.jobs import manager

    rid = _finished_run({"max_iters": 8, "window": 3, "patience": 1000})
    (manager().store.get(rid).path / "arrays" / "observed.npy").unlink()
    at = _open(rid)
    assert not at.exception
    assert any("no input image" in w.value for w in at.warning)

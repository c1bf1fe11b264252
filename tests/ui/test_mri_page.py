"""AppTest of the MRI page: the inputs render, a short run finishes with the three reconstructions."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "mri.py")


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def test_inputs_render_and_a_short_run_finishes():
    from ui.jobs import manager

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.selectbox(key="mri_size").set_value(32)
    at.selectbox(key="mri_acc").set_value(8)
    at.number_input(key="mri_iters").set_value(30).run()
    assert not at.exception
    at.button(key="mri_run").click().run()
    assert not at.exception
    rid = _qp(at, "run")
    assert manager().wait(rid, 90) == "done"
    at.run()
    assert not at.exception
    assert any(s.label == "Summary" for s in at.expander)
    summary = manager().store.get(rid).read_json("summary.json")
    assert summary["measured_acceleration"] > 6 and summary["tv_psnr"] > summary["input_psnr"]


def test_a_finished_run_shows_its_curves_thinned():
    import json

    from ui.jobs import manager
    from ui.widgets import LIVE_POINTS

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="mri_size").set_value(32)
    at.number_input(key="mri_iters").set_value(400).run()
    at.button(key="mri_run").click().run()
    rid = _qp(at, "run")
    assert manager().wait(rid, 120) == "done"
    at.run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    charts = {s["layout"]["title"]["text"]: s for s in specs}
    assert "DIP data loss" in charts
    x = charts["DIP data loss"]["data"][0]["x"]
    n_rows = len([r for r in manager().store.get(rid).metrics() if r.get("loss") is not None])
    assert n_rows > LIVE_POINTS and len(x) == LIVE_POINTS and x[-1] == n_rows
    assert any(c.startswith("DIP, iteration") for el in at.get("image") for c in [i.caption for i in el.proto.imgs])

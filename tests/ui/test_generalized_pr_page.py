"""AppTest of the Generalized PR page: the four tabs render, a run and a sweep finish."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "generalized_pr.py")


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def test_tabs_render_and_teaching_panels_compute():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert len(at.tabs) == 4
    # symmetry metrics: Fourier magnitudes agree to rounding
    vals = [m.value for m in at.metric if m.label.startswith("max |ΔF|")]
    assert len(vals) == 4 and all(float(v) < 1e-10 for v in vals)
    assert any("local minima (found along rays" in c.value for c in at.caption)
    at.radio(key="land_loss").set_value("amplitude").run()
    at.toggle(key="land_surface").set_value(True).run()
    assert not at.exception


def test_reconstruct_run_finishes():
    from ui.jobs import manager

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.select_slider(key="gpr_size").set_value(8)
    at.slider(key="gpr_ratio").set_value(6.0)
    at.selectbox(key="gpr_alg").set_value("gs").run()
    at.number_input(key="gpr_iters_gs").set_value(200)
    at.button(key="gpr_run").click().run()
    assert not at.exception
    rid = _qp(at, "run")
    assert manager().wait(rid, 60) == "done"
    at.run()
    assert not at.exception
    assert any("recovered up to global phase" in s.value for s in at.success)


def test_sweep_runs_and_bad_ratios_are_reported():
    from ui.jobs import manager

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.number_input(key="sw_n").set_value(8)
    at.text_input(key="sw_ratios_False").set_value("abc")
    at.button(key="sw_run").click().run()
    assert any("ratios must be numbers" in e.value for e in at.error)
    at.text_input(key="sw_ratios_False").set_value("2,6")
    at.number_input(key="sw_trials").set_value(2)
    at.number_input(key="sw_iters").set_value(200)
    at.multiselect(key="sw_algs").set_value(["gs", "taf"])
    at.button(key="sw_run").click().run()
    sid = _qp(at, "sweep")
    assert manager().wait(sid, 60) == "done"
    at.run()
    assert not at.exception
    assert len(at.dataframe) == 1


def test_dip_prior_run_shows_error_curve_and_image():
    from ui.jobs import manager

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.select_slider(key="gpr_size").set_value(8)
    at.slider(key="gpr_ratio").set_value(2.0)
    at.selectbox(key="gpr_alg").set_value("dip").run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "gpr_init"]  # a network has no spectral initializer
    at.number_input(key="gpr_iters_dip").set_value(60)
    at.number_input(key="gpr_dip_patience").set_value(1000)
    at.button(key="gpr_run").click().run()
    assert not at.exception
    rid = _qp(at, "run")
    assert manager().wait(rid, 120) == "done"
    at.run()
    assert not at.exception
    run = manager().store.get(rid)
    spec = run.spec["params"]
    assert spec["algorithm"] == "dip" and spec["dip"] == {"obj": "real", "patience": 1000}
    summary = run.read_json("summary.json")
    assert summary["iterations"] == 60 and summary["stop"] == "budget" and summary["m"] == 2 * 64
    assert 0 <= summary["error"] < 2 and summary["es_iteration"] is not None
    layouts = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    titles = [lay["title"]["text"] for lay in layouts if "title" in lay]
    assert "Error and loss" in titles and "ES-WMV variance" in titles
    assert any("DIP prior (ES-WMV)" in w.value for w in at.warning)  # not recovered in 60 iterations
    assert any(w.value.startswith("No early stop fired") for w in at.warning)
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert any(c.startswith("Estimate |x̂| (at t* = ") for c in captions), captions
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 10 and all(r["error"] >= 0 for r in rows)


def test_dip_prior_refuses_a_random_vector():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="gpr_signal").set_value("random").run()
    at.selectbox(key="gpr_alg").set_value("dip").run()
    at.button(key="gpr_run").click().run()
    assert not at.exception
    assert any("DIP prior draws images" in e.value for e in at.error)
    assert "run" not in at.query_params

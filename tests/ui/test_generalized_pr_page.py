"""AppTest of the Generalized PR page: the four tabs render, a run and a sweep finish."""

from __future__ import annotations

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
    assert any("local minima on the grid" in c.value for c in at.caption)
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

"""AppTest of the Beamline CDI page: simulate a pattern, choose the unmeasured pixels and the initial
support, run a short recipe, see the result and its warnings, bad recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "phase_retrieval.py")


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def _small_pattern(at: AppTest) -> AppTest:
    at.selectbox(key="size").set_value(64)
    return at.run()


def test_simulated_pattern_shows_its_statistics():
    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    assert not at.exception
    assert at.radio(key="source").value == "Simulate a pattern"
    metrics = {m.label: m.value for m in at.metric}
    assert {"Photons", "Max count", "Zero pixels (measured)", "Not measured"} <= set(metrics)
    assert float(metrics["Photons"]) > 0
    assert any(c.value == "Shape (64, 64)" for c in at.caption)
    assert len(at.get("image")) == 2  # the pattern with its unmeasured pixels; the support over the autocorrelation
    assert not at.sidebar.button(key="run").disabled


def _submitted(at: AppTest, monkeypatch) -> dict:
    """Press Run with the job manager's submit replaced: what the page would submit (no job runs)."""
    from ui.jobs import manager

    seen: dict = {}

    def fake_submit(spec, arrays=None, label=None):  # noqa: ANN001
        seen.update(spec=spec, arrays=arrays, label=label)
        raise RuntimeError("not submitted in this test")

    monkeypatch.setattr(manager(), "submit", fake_submit)
    at.sidebar.button(key="run").click().run()
    monkeypatch.undo()
    assert seen, "the page did not submit"
    at.run()  # a plain rerun: the setup again, no run
    return seen


def _metric(at: AppTest, label: str) -> str:
    return {m.label: m.value for m in at.metric}[label]


def test_mask_mode_goes_into_the_job_and_the_counts_are_shown(monkeypatch):
    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    assert at.radio(key="mask_zeros").value == "auto"
    rows = at.dataframe[0].value.set_index("what")
    assert "not measured in all" in rows.index
    assert int(rows.loc["from the given mask", "pixels"]) > 0  # the simulated beamstop and gap
    at.checkbox(key="sim_mask").uncheck().run()  # the page must now find the beamstop on its own
    assert not at.exception
    rows = at.dataframe[0].value.set_index("what")
    assert int(rows.loc["from the given mask", "pixels"]) == 0
    found = [w for w in rows.index if w.startswith("zero groups")]
    assert found and int(rows.loc[found[0], "pixels"]) > 0
    assert not _metric(at, "Not measured").startswith("0 ")
    at.radio(key="mask_zeros").set_value("none").run()
    assert not at.exception
    assert _metric(at, "Not measured").startswith("0 ")
    at.radio(key="mask_zeros").set_value("all").run()
    assert _metric(at, "Zero pixels (measured)").startswith("0 ")
    seen = _submitted(at, monkeypatch)
    assert not at.exception
    assert seen["spec"]["params"]["mask_zeros"] == "all"
    assert int(seen["arrays"]["mask"].sum()) == 0  # only the given mask: the job finds the zeros itself


def test_support_choices_draw_and_pass_the_support(monkeypatch):
    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    assert at.radio(key="support_mode").value == "autocorrelation"
    before = int(_metric(at, "Support pixels").replace(",", ""))
    at.slider(key="ac_threshold").set_value(0.3).run()
    assert not at.exception
    assert int(_metric(at, "Support pixels").replace(",", "")) < before
    seen = _submitted(at, monkeypatch)
    assert "support" not in seen["arrays"]  # the job computes the same support from the threshold
    assert seen["spec"]["params"]["options"]["autocorr_threshold"] == 0.3

    at.radio(key="support_mode").set_value("disc").run()
    at.slider(key="disc_size").set_value(50).run()
    assert not at.exception
    assert any(c.value == "Diameter 32 px, centred" for c in at.sidebar.caption)
    seen = _submitted(at, monkeypatch)
    sup = seen["arrays"]["support"]
    assert sup.shape == (64, 64) and sup.dtype == np.uint8 and sup[32, 32] == 1 and sup[0, 0] == 0
    assert abs(int(sup.sum()) - np.pi * 16 ** 2) < 60
    from engine.cdi.solver import SUPPORT_RECIPE

    assert seen["spec"]["params"]["recipe"] == SUPPORT_RECIPE  # the default recipe follows the support

    at.radio(key="support_mode").set_value("rectangle").run()
    at.slider(key="rect_h").set_value(25).run()
    at.slider(key="rect_w").set_value(50).run()
    assert not at.exception
    assert any(c.value == "16 × 32 px, centred" for c in at.sidebar.caption)
    assert _metric(at, "Support pixels") == "512"

    at.radio(key="support_mode").set_value("upload").run()
    assert not at.exception
    assert any("Upload a support image" in i.value for i in at.info)
    assert at.sidebar.button(key="run").disabled
    assert any(c.value == "Shape (64, 64)" for c in at.caption)  # the pattern is still shown


def test_upload_without_a_file_asks_for_one():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="source").set_value("Upload").run()
    assert not at.exception
    assert any("Upload a centred diffraction pattern" in i.value for i in at.info)
    assert at.sidebar.button(key="run").disabled


def test_bad_recipe_reports_the_position():
    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    at.selectbox(key="preset").set_value("Custom").run()
    at.text_input(key="recipe").set_value("ER**20*HIO**20**3").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("recipe error at position 14:"), errors
    assert at.sidebar.button(key="run").disabled
    at.text_input(key="recipe").set_value("ER**20*FOO**5").run()
    assert not at.exception
    assert any("position 7" in e.value for e in at.error), [e.value for e in at.error]


def test_short_run_shows_ranked_starts_prtf_and_downloads():
    from ui.jobs import manager

    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    at.selectbox(key="preset").set_value("Custom").run()
    at.text_input(key="recipe").set_value("ER**20*HIO**20")
    at.number_input(key="starts").set_value(2).run()
    assert any(c.value == "40 cycles, 0 support updates" for c in at.sidebar.caption)
    at.sidebar.button(key="run").click().run()
    assert not at.exception
    rid = _qp(at, "run")
    assert manager().wait(rid, 120) == "done"
    at.run()
    assert not at.exception
    assert any(s.value == "Result" for s in at.subheader)
    table = at.dataframe[0].value
    assert list(table["rank"]) == [1, 2] and sorted(table["start"]) == [0, 1]
    assert list(table["free LLK"]) == sorted(table["free LLK"])  # ranked by free LLK
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "PRTF of the best starts (registered)" in titles
    assert "Log-likelihood per pixel" in titles
    labels = [b.label for b in at.get("download_button")]
    assert {"NPZ", "CXI", "PNG"} <= set(labels)
    assert "Measured vs |F x|² (radial mean)" in titles
    summary = manager().store.get(rid).read_json("summary.json")
    assert summary["cycles_done"] == 40 and summary["starts"] == 2
    if summary.get("support_history"):
        assert "Support size after each update" in titles
    metrics = {m.label: m.value for m in at.metric}
    assert 0 <= float(metrics["Similarity to the truth"]) <= 1  # a simulation: the truth beside the result
    assert summary["mask"]["mode"] == "auto"

    # the summary's warnings are shown first, in plain words
    run = manager().store.get(rid)
    summary["warnings"] = ["The support collapsed to 12 pixels. Draw a support on the page."]
    (run.path / "summary.json").write_text(json.dumps(summary))
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning] == summary["warnings"]


def test_dip_prior_options_go_into_the_job(monkeypatch):
    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    at.sidebar.radio(key="solver").set_value("dip").run()
    assert not at.exception
    assert not [s for s in at.sidebar.selectbox if s.key == "preset"]  # no recipe with the DIP prior
    at.sidebar.number_input(key="dip_iters").set_value(200)
    at.radio(key="dip_object").set_value("real")
    at.radio(key="dip_loss").set_value("poisson")
    at.number_input(key="dip_patience").set_value(40).run()
    seen = _submitted(at, monkeypatch)
    p = seen["spec"]["params"]
    assert seen["spec"]["kind"] == "cdi" and p["solver"] == "dip" and "recipe" not in p
    assert p["dip"] == {"preset": "pr", "max_iters": 200, "obj": "real", "loss": "poisson", "lr": 0.01,
                        "patience": 40, "shrink_every": 0}
    assert p["options"]["autocorr_threshold"] == 0.1 and "truth" in seen["arrays"]


def test_dip_prior_run_shows_its_curves_and_the_object_at_t_star():
    from ui.jobs import manager

    at = _small_pattern(AppTest.from_file(PAGE, default_timeout=60).run())
    at.sidebar.radio(key="solver").set_value("dip").run()
    at.sidebar.number_input(key="dip_iters").set_value(60).run()  # the ES window (50) fills, ES cannot fire
    at.sidebar.button(key="run").click().run()
    assert not at.exception
    rid = _qp(at, "run")
    assert manager().wait(rid, 180) == "done"
    at.run()
    assert not at.exception
    assert any(s.value == "Result" for s in at.subheader)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "DIP loss (measured pixels)" in titles and "ES-WMV variance" in titles
    assert "PRTF of the DIP object" in titles and "Measured vs |F x|² (radial mean)" in titles
    summary = manager().store.get(rid).read_json("summary.json")
    assert summary["solver"] == "dip" and summary["iterations"] == 60 and summary["stop"] == "budget"
    assert any(w.value.startswith("No early stop fired") for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Iteration"] == "60 / 60" and metrics["t* (lowest variance)"] != "—"
    assert 0 <= float(metrics["Similarity to the truth"]) <= 1
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
    fig_titles = [(json.loads(c.proto.spec)["layout"].get("title") or {}).get("text", "")
                  for c in at.get("plotly_chart")]
    assert any(t.startswith("Amplitude (DIP prior, object at t* = ") for t in fig_titles), fig_titles
    assert any(c.startswith("Current object, iteration 60") for c in captions), captions
    labels = [b.label for b in at.get("download_button")]
    assert {"NPZ", "CXI", "PNG"} <= set(labels)

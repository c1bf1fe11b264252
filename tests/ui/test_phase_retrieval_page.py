"""AppTest of the Beamline CDI page: simulate a pattern, run a short recipe, see the result, bad recipes."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert len(at.get("image")) == 1  # the log-scale pattern
    assert not at.sidebar.button(key="run").disabled


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
    summary = manager().store.get(rid).read_json("summary.json")
    assert summary["cycles_done"] == 40 and summary["starts"] == 2

"""AppTest of the Federated learning page: a bad folder is reported; a tiny run draws and ends with a table."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.federated.synth import make_folder

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "federated.py")


def test_tiny_run_finishes_with_table(tmp_path):
    from ui.jobs import manager

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.text_input(key="fl_data").set_value(str(tmp_path / "missing"))
    at.button(key="fl_run").click().run()
    assert any("no folder" in e.value for e in at.error)
    data = make_folder(tmp_path / "cxr", per_class=12, size=32)
    at.text_input(key="fl_data").set_value(str(data))
    at.number_input(key="fl_sites").set_value(2)
    at.number_input(key="fl_rounds").set_value(2)
    at.selectbox(key="fl_norm").set_value("gn")
    at.select_slider(key="fl_size").set_value(32)
    at.number_input(key="fl_films").set_value(0)
    at.multiselect(key="fl_regimes").set_value(["centralised", "local"])  # no Ray here: the e2e covers FedAvg
    at.button(key="fl_run").click().run()
    assert not at.exception
    rid = at.query_params["run"]
    rid = rid[0] if isinstance(rid, list) else rid
    assert manager().wait(rid, 90) == "done"
    at.run()
    assert not at.exception
    assert len(at.dataframe) == 1
    assert len(at.dataframe[0].value) == 2

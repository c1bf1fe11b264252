"""AppTest of the Runs page: list, reopen, compare two runs' curves."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.runs import RunStore

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "runs.py")


@pytest.fixture
def two_runs(_runs_dir):
    store = RunStore(_runs_dir)
    ids = []
    for k, label in enumerate(["alpha", "beta"]):
        run = store.create({"kind": "restore", "params": {"preset": "cpu", "label": label}}, label=label)
        for i in range(1, 21):
            run.log({"iteration": i, "loss": 1.0 / (i + k), "psnr": 20 + i * 0.1 + k})
        run.set_status(state="done", iteration=20)
        run.write_json("summary.json", {"es_iteration": 12 + k, "es_psnr": 21.2 + k, "wall_seconds": 3.0})
        ids.append(run.id)
    return ids


def test_lists_runs_and_compares(two_runs):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["run"]) == set(two_runs)
    assert set(table["state"]) == {"done"}
    # the compare chart is drawn for the two runs by default, on the PSNR metric
    assert at.selectbox(key="compare-metric").value == "psnr"
    assert len(at.get("plotly_chart")) == 1
    import json

    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(fig["data"]) == 2
    assert {len(tr["x"]) for tr in fig["data"]} == {20}


def test_empty_store_says_so():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_filter_by_kind(two_runs, _runs_dir):
    RunStore(_runs_dir).create({"kind": "cdi", "params": {"recipe": "ER**10"}})
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert len(at.dataframe[0].value) == 3
    at.multiselect(key="kinds").set_value(["cdi"]).run()
    assert list(at.dataframe[0].value["kind"]) == ["cdi"]

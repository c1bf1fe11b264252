"""AppTest of the X-ray robustness page: a saved robustness.json opens as tables and plots; bad files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.xray import robustness as rb
from tests.xray.test_robustness import make_films

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "xray_robustness.py")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rob")
    films = make_films(root / "films", n=4)
    res = rb.evaluate(films, films=8, dip_films=4, split="all", corruptions=["gaussian_noise", "fog"],
                      severities=[2, 4], dip_corruptions=["gaussian_noise"], dip_severities=[4], dip_max_iters=2)
    jpath, _ = rb.write_outputs(res, root / "out")
    return jpath


def _open(path: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="xr_rob_path").input(path).run()
    at.button(key="xr_rob_open").click().run()
    return at


def test_page_starts_with_the_run_form_and_no_result() -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.number_input(key="xr_rob_films").value == 200
    assert len(at.multiselect(key="xr_rob_names").value) == 15
    assert any("Run a robustness test" in i.value for i in at.info)
    assert not at.dataframe


def test_saved_json_shows_the_tables_and_the_plots(saved: Path) -> None:
    at = _open(str(saved))
    assert not at.exception and not at.error
    res = json.loads(saved.read_text())
    main, dip = at.dataframe[0].value, at.dataframe[1].value
    assert list(main["corruption"]) == ["clean", "Gaussian noise", "Fog"]
    assert list(main.columns) == ["corruption", "sev 2", "sev 4"]
    assert main["sev 2"].iloc[0] == pytest.approx(res["clean"]["auc"])
    fog4 = next(r for r in res["rows"] if r["corruption"] == "fog" and r["severity"] == 4)
    assert main["sev 4"].iloc[2] == pytest.approx(fog4["auc"])
    assert list(dip["corruption"]) == ["clean", "Gaussian noise"]
    assert dip["AUC with DIP"].iloc[1] == pytest.approx(res["dip"]["rows"][0]["with"]["auc"])
    assert len(at.get("plotly_chart")) == 2
    assert at.metric[0].value == f"{res['clean']['auc']:.3f}"
    # the accuracy view of the same result
    at.radio(key="xr_rob_metric").set_value("accuracy").run()
    assert at.dataframe[0].value["sev 2"].iloc[0] == pytest.approx(res["clean"]["accuracy"])


def test_a_file_that_is_not_a_result_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "something else"}))
    at = _open(str(other))
    assert not at.exception
    assert any("not a robustness result" in e.value for e in at.error)
    assert not at.dataframe


def test_run_from_the_form_shows_the_result(tmp_path: Path) -> None:
    films = make_films(tmp_path / "films", n=3)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_input(key="xr_rob_data").input(str(films))
    at.radio(key="xr_rob_split").set_value("all")
    at.number_input(key="xr_rob_films").set_value(6)
    at.multiselect(key="xr_rob_sevs").set_value([3])
    at.multiselect(key="xr_rob_names").set_value(["contrast", "pixelate"])
    at.number_input(key="xr_rob_dip_films").set_value(2)
    at.multiselect(key="xr_rob_dip_names").set_value(["shot_noise"])
    at.multiselect(key="xr_rob_dip_sevs").set_value([5])
    at.number_input(key="xr_rob_cap").set_value(2)
    at.button(key="xr_rob_run").click().run()
    assert not at.exception and not at.error
    main = at.dataframe[0].value
    assert list(main["corruption"]) == ["clean", "Contrast", "Pixelate"] and list(main.columns)[1:] == ["sev 3"]
    assert all(0.0 <= v <= 1.0 for v in main["sev 3"])
    assert list(at.dataframe[1].value["corruption"]) == ["clean", "Shot noise"]


def test_a_bad_folder_is_one_error_line(tmp_path: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="xr_rob_data").input(str(tmp_path / "nowhere"))
    at.button(key="xr_rob_run").click().run()
    assert not at.exception
    assert any("is not a folder" in e.value for e in at.error)
    assert not at.dataframe

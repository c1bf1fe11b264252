"""AppTest of the Runs page: the named table, compare within one kind, rename, export, delete, reopen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "ui" / "screens" / "runs.py")
APP = str(ROOT / "ui" / "app.py")


def _done(store: RunStore, kind: str, params: dict, summary: dict, rows: list[dict] | None = None,
          arrays: dict | None = None, label: str | None = None):
    run = store.create({"kind": kind, "params": params}, label=label)
    for row in rows or []:
        run.log(row)
    for name, arr in (arrays or {}).items():
        run.save_array(name, arr)
    run.set_status(state="done", iteration=len(rows or []))
    run.write_json("summary.json", summary)
    return run


def _dip(store: RunStore, label: str, k: int = 0):
    rows = [{"iteration": i, "loss": 1.0 / (i + k), "psnr": 20 + i * 0.1 + k, "es_variance": 0.1 / i}
            for i in range(1, 21)]
    return _done(store, "restore", {"preset": "cpu", "label": label},
                 {"es_iteration": 12 + k, "es_psnr": 21.2 + k, "preset": "cpu", "wall_seconds": 3.0}, rows,
                 {"observed": np.zeros((64, 64, 3), np.float32)}, label=label)


@pytest.fixture
def two_runs(_runs_dir):
    store = RunStore(_runs_dir)
    a = _dip(store, "alpha", 0)
    a.rename("first try")
    b = _dip(store, "beta", 1)
    b.rename("second try")
    return [a.id, b.id]


def _fig(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_lists_named_runs_and_compares_with_named_curves(two_runs):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["id"]) == set(two_runs)
    assert set(table["name"]) == {"first try", "second try"}
    assert set(table["kind"]) == {"Restoration"} and set(table["state"]) == {"done"}
    assert set(table["size"]) == {"64×64 RGB"} and set(table["preset / recipe / algorithm"]) == {"cpu"}
    assert set(table["key result"]) == {"21.20 dB at t* = 12", "22.20 dB at t* = 13"}
    assert set(table["input"]) == {"alpha", "beta"}
    # the two runs are compared by default, on PSNR, one curve named after each run
    assert at.selectbox(key="compare-kind").value == "restore"
    assert at.selectbox(key="compare-metric-restore").value == "psnr"
    assert at.selectbox(key="compare-metric-restore").options == ["psnr", "loss", "es_variance"]
    fig = _fig(at)
    assert {tr["name"] for tr in fig["data"]} == {"first try", "second try"}
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
    assert list(at.dataframe[0].value["kind"]) == ["CDI"]
    assert at.selectbox(key="reopen-pick").options[0].endswith("· CDI")


def test_compare_takes_runs_of_one_kind_only(two_runs, _runs_dir):
    store = RunStore(_runs_dir)
    rows = [{"iteration": i, "error": 10.0 ** -i, "loss": 1.0 / i} for i in range(1, 9)]
    g = _done(store, "gpr", {"algorithm": "wf", "signal": "camera"}, {"error": 1e-8, "success": True}, rows)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    # the newest run is a GPR run: its kind is compared, and only runs of that kind are offered
    assert at.selectbox(key="compare-kind").value == "gpr"
    assert at.multiselect(key="compare-pick-gpr").options == [g.name]
    assert at.selectbox(key="compare-metric-gpr").value == "error"
    assert at.checkbox(key="logy-gpr-error").value
    assert [tr["name"] for tr in _fig(at)["data"]] == [g.name]
    at.selectbox(key="compare-kind").set_value("restore").run()
    assert sorted(at.multiselect(key="compare-pick-restore").options) == ["first try", "second try"]
    assert {tr["name"] for tr in _fig(at)["data"]} == {"first try", "second try"}


def test_two_runs_with_one_name_get_two_legends(_runs_dir):
    store = RunStore(_runs_dir)
    a, b = _dip(store, "same"), _dip(store, "same", 1)
    a.rename("twin")
    b.rename("twin")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    names = {tr["name"] for tr in _fig(at)["data"]}
    assert names == {f"twin ({a.id[-6:]})", f"twin ({b.id[-6:]})"}


def test_key_result_of_every_kind(_runs_dir):
    store = RunStore(_runs_dir)
    _done(store, "mri", {"preset": "cpu", "source": "simulated"}, {"es_psnr": 30.5, "es_iteration": 40},
          arrays={"kspace": np.zeros((32, 32), np.complex64)})
    _done(store, "cdi", {"recipe": "HIO**20", "label": "sim-disc-64"}, {"llk_per_pixel": 0.00123, "recipe": "HIO**20"},
          arrays={"intensity": np.zeros((64, 64), np.float32)})
    _done(store, "gpr", {"algorithm": "taf", "signal": "random", "n": 64},
          {"error": 2.5e-9, "success": True, "algorithm_label": "TAF", "init": "orthogonality", "shape": [64],
           "ratio": 4.0})
    _done(store, "gpr_sweep", {"n": 16, "trials": 4, "algorithms": ["wf", "taf"]},
          {"success": {"wf": {"2": 0.0, "4.5": 1.0, "5": 1.0}, "taf": {"2": 0.5, "3": 0.95}}})
    _done(store, "xray", {"model": "default", "images": [{"array": "img0", "name": "image 1"}]},
          {"results": [{"label": "PNEUMONIA", "probability": 0.83}], "model": "cxr"},
          arrays={"img0": np.zeros((40, 30), np.uint8)})
    _done(store, "federated", {"data": "/data/cxr", "sites": 2, "size": 32, "norm": "gn"},
          {"table": [{"label": "fedavg-gn", "auc_pooled": 0.81}, {"label": "local-gn", "auc_pooled": 0.74}]})
    store.create({"kind": "restore", "params": {"label": "camera"}})  # never ran: no summary
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    rows = {r["kind"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert rows["MRI"]["key result"] == "30.50 dB at t* = 40" and rows["MRI"]["size"] == "32×32"
    assert rows["MRI"]["input"] == "simulated k-space"
    assert rows["CDI"]["key result"] == "LLK 0.00123" and rows["CDI"]["preset / recipe / algorithm"] == "HIO**20"
    assert rows["GPR"]["key result"] == "error 2.5e-09 (recovered)"
    assert rows["GPR"]["preset / recipe / algorithm"] == "TAF (orthogonality)"
    assert rows["GPR"]["size"] == "n = 64, m/n = 4"
    assert rows["GPR sweep"]["key result"] == "m/n at 90%: wf 4.5, taf 3"
    assert rows["X-ray"]["key result"] == "PNEUMONIA (P = 0.83)" and rows["X-ray"]["size"] == "40×30"
    assert rows["Federated"]["key result"] == "best AUC 0.810 (fedavg-gn)" and rows["Federated"]["input"] == "cxr"
    assert rows["Restoration"]["key result"] == "" and rows["Restoration"]["state"] == "interrupted"


def test_rename_then_delete_with_a_confirm(two_runs):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    rid = two_runs[1]  # the newest: picked first
    assert at.selectbox(key="reopen-pick").value == rid
    at.text_input(key=f"name-{rid}").set_value("x" * 20 + "\n").run()
    at.text_input(key=f"name-{rid}").set_value("  best so far ").run()
    at.button(key="rename").click().run()
    assert not at.exception
    assert "best so far" in set(at.dataframe[0].value["name"])
    assert at.success[0].value == "Renamed to best so far."
    at.text_input(key=f"name-{rid}").set_value("a/b").run()
    at.button(key="rename").click().run()
    assert "not a path" in at.error[0].value
    assert len(at.get("download_button")) == 1  # Export ZIP
    at.button(key="delete").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key="delete-no").click().run()
    assert len(at.dataframe[0].value) == 2 and not at.warning
    at.button(key="delete").click().run()
    at.button(key="delete-yes").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == [two_runs[0]]
    assert at.success[0].value == "Deleted best so far."
    assert not (RunStore().root / rid).exists()


def test_a_running_run_cannot_be_deleted(two_runs):
    run = RunStore().get(two_runs[1])
    with run.try_lock():  # as its worker holds it
        at = AppTest.from_file(PAGE, default_timeout=30).run()
        assert at.button(key="delete").disabled
    at.run()
    assert not at.button(key="delete").disabled


KINDS = {"restore": ("Restoration with the Deep Image Prior", "run"), "mri": ("MRI", "run"),
         "cdi": ("Beamline CDI", "run"), "gpr": ("Generalized phase retrieval", "run"),
         "gpr_sweep": ("Generalized phase retrieval", "sweep"), "xray": ("X-ray", "run"),
         "federated": ("Federated", "run")}


@pytest.mark.parametrize("kind", list(KINDS))
def test_open_goes_to_the_page_of_the_kind_with_the_run_in_the_url(kind, _runs_dir):
    # a failed run: every page shows its header and message without reading result files
    run = RunStore(_runs_dir).create({"kind": kind, "params": {}})
    run.set_status(state="failed", message="made for this test")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("screens/runs.py").run()
    assert not at.exception
    at.button(key="reopen").click().run()
    title, param = KINDS[kind]
    v = at.query_params.get(param)
    assert (v[0] if isinstance(v, list) else v) == run.id
    assert title.lower() in at.title[0].value.lower()
    assert param == "sweep" or "sweep" not in at.query_params

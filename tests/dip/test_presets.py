"""The cpu preset's early stopping is the one its benchmark measured (bench/es_gap.py)."""

import json
from pathlib import Path

from engine.dip.presets import get_preset

RESULT = Path(__file__).resolve().parents[2] / "bench" / "results" / "es_gap.json"


def _result() -> dict:
    return json.loads(RESULT.read_text())


def test_cpu_preset_early_stopping_is_the_benchmarked_one():
    # a change of W, P or the output EMA needs `python bench/es_gap.py analyse` (and a new
    # `record` when the curves it needs are missing) before it can ship
    shipped = _result()["shipped_preset"]
    p = get_preset("cpu")
    assert shipped["name"] == "cpu" and shipped["stopping"] == "wmv"
    assert (p.window, p.patience, p.ema) == (shipped["window"], shipped["patience"], shipped["ema"])
    cfg = _result()["results"]["shipped"]["config"]
    assert (cfg["window"], cfg["patience"], cfg["ema"], cfg["budget"]) == (p.window, p.patience, p.ema,
                                                                          p.budget("denoise"))


def test_cpu_preset_benchmark_meets_the_goal_within_budget():
    doc = _result()
    s = doc["results"]["shipped"]
    for part in ("level3", "all"):
        assert s["summary"][part]["goal_met"]
        assert s["summary"][part]["gap_mean_db"] <= doc["goal"]["mean_db"]
        assert s["summary"][part]["gap_worst_db"] <= doc["goal"]["worst_db"]
    p = get_preset("cpu")
    # the budget reaches t* + P on every dev case: the detector, not the budget, ends the runs
    assert all(r["fired"] and r["t_star"] + p.patience <= p.budget("denoise") for r in s["cases"].values())
    assert len(s["cases"]) == 36

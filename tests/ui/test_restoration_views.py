"""Wording of the Restoration page (ui.views.restoration) and how the restore workflow records its stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ui.views import restoration as rv

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- live wording

def test_candidate_is_worded_as_a_candidate():
    assert rv.candidate_text(143, 57) == (
        "candidate t* = 143: the variance minimum so far, not yet a decision; the stop is declared if it "
        "does not improve in the next 57 iterations")
    assert rv.candidate_text(10, 1).endswith("in the next 1 iteration")
    # the patience outlasts the budget: the candidate can only become the minimum within the budget
    assert rv.candidate_text(143, 57, budget_left=20).endswith(
        "in the next 57 iterations, but the budget ends first, in 20: then t* is the minimum within the budget, "
        "not a detected stop")
    assert rv.candidate_text(143, 57, budget_left=80) == rv.candidate_text(143, 57)


def test_window_filling_and_burn_in():
    assert "window filling 3/5" in rv.window_filling(3, 5)
    assert "window filling 5/5" in rv.window_filling(9, 5)  # never more than W
    assert "burn-in 4/10" in rv.burn_in(4, 10)


def test_live_status_phases():
    s = rv.live_status({"es_iteration": None, "patience_left": 20, "es_window": 8}, stopping="wmv", iteration=3)
    assert s.phase == "warmup" and s.t_star is None and "window filling 3/8" in s.text
    # without the published window, the run's parameter is used
    s = rv.live_status({}, stopping="wmv", iteration=2, window=6)
    assert "window filling 2/6" in s.text
    s = rv.live_status({"es_burn_in": 10}, stopping="emv", iteration=4)
    assert s.phase == "warmup" and "burn-in 4/10" in s.text
    s = rv.live_status({"es_iteration": 143, "patience_left": 57, "es_fired": False}, stopping="wmv",
                       iteration=200)
    assert s.phase == "candidate" and s.t_star == 143 and s.label == "Candidate t*"
    assert s.text == rv.candidate_text(143, 57)
    s = rv.live_status({"es_iteration": 143, "patience_left": 57, "max_iters": 210}, stopping="wmv", iteration=200)
    assert "the budget ends first, in 10:" in s.text
    s = rv.live_status({"es_iteration": 143, "patience_left": 57, "max_iters": 210, "run_to_budget": True},
                       stopping="wmv", iteration=200)
    assert "budget" not in s.text
    s = rv.live_status({"es_iteration": 143, "patience_left": 0, "es_fired": True}, stopping="wmv",
                       iteration=243, patience=100)
    assert s.phase == "detected" and s.label == "Detected stop t*" and "P = 100" in s.text
    assert rv.live_status({"es_iteration": 5}, stopping="none", iteration=9).phase == "off"


# ----------------------------------------------------------------------------- finished runs

def test_stop_of_reads_the_summary_or_infers_it():
    assert rv.stop_of({"stop": "budget", "es_fired": True}) == "budget"
    assert rv.stop_of({"state": "cancelled", "es_fired": False}) == "user"
    assert rv.stop_of({"state": "done", "es_fired": True}) == "detected"
    assert rv.stop_of({"state": "done", "es_fired": False}) == "budget"


def test_verdict_for_each_way_a_run_ends():
    user = {"stop": "user", "es_fired": False, "es_iteration": 143, "stopped_iteration": 212}
    level, text = rv.verdict(user, stopping="wmv")
    assert level == "warning"
    assert text == ("You stopped the run at iteration 212 before the detector decided; the image below is the "
                    "best candidate so far, t* = 143, not a detected stop.")
    level, text = rv.verdict({**user, "es_iteration": None}, stopping="wmv")
    assert "before the detector had a variance" in text and "last output" in text
    level, text = rv.verdict({"stop": "budget", "es_fired": False, "es_iteration": 90, "max_iters": 120},
                             stopping="wmv")
    assert level == "info" and "ran out before the detector fired: t* = 90 is the minimum within the budget" in text
    assert rv.verdict({"stop": "detected", "es_fired": True, "es_iteration": 90}, stopping="wmv") is None
    # a user stop after the detector fired (run_to_budget) is a detected t*: nothing to warn about
    assert rv.verdict({"stop": "user", "es_fired": True, "es_iteration": 90}, stopping="wmv") is None
    assert rv.verdict({"stop": "budget", "es_fired": False}, stopping="none") is None


def test_result_and_forced_stop_captions():
    assert rv.result_caption({"es_iteration": 40, "es_fired": True, "es_psnr": 28.123},
                             stopping="wmv") == "Output at t* = 40 · 28.12 dB"
    assert rv.result_caption({"es_iteration": 40, "es_fired": False}, stopping="wmv") == \
        "Output at t* = 40 (minimum within the budget)"
    assert rv.result_caption({"es_iteration": 40}, stopping="none") == "Last output"
    caps = rv.forced_stop_captions({"stopped_iteration": 212, "es_iteration": 143, "last_psnr_vs_input": 21.0,
                                    "es_psnr_vs_input": 22.5, "es_psnr": 27.25, "last_psnr": 26.0})
    assert caps["last"] == "Last output, iteration 212 · 21.00 dB vs input · 26.00 dB vs reference"
    assert caps["best"] == ("Best candidate so far, t* = 143 (not a detected stop) · 22.50 dB vs input "
                            "· 27.25 dB vs reference")
    assert "t*" not in rv.forced_stop_captions({"stopped_iteration": 3, "es_iteration": None}).get("best", "")
    assert "best" not in rv.forced_stop_captions({"stopped_iteration": 3, "es_iteration": None})
    assert rv.psnr_suffix(None, None) == ""


# ----------------------------------------------------------------------------- figures and the result table

def _decode(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    head, data = uri.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_before_after_figure_splits_input_and_output():
    rng = np.random.default_rng(0)
    before, after = rng.random((40, 60)).astype(np.float32), rng.random((40, 60, 3)).astype(np.float32)
    fig = rv.before_after_figure(before, after, strips=10)
    assert len(fig.data) == 11 and all(t.type == "image" for t in fig.data)
    # the output whole underneath, the input in strips that add up to it
    assert np.array_equal(_decode(fig.data[0].source), (after * 255 + 0.5).astype(np.uint8))
    strips = np.concatenate([_decode(t.source) for t in fig.data[1:]], axis=1)
    assert np.array_equal(strips[..., 0], (before * 255 + 0.5).astype(np.uint8))
    assert [t.x0 for t in fig.data[1:3]] == [0, 6]
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == 11 and slider.active == 5
    assert slider.steps[0].args[0]["visible"] == [True] + [False] * 10  # all output
    assert slider.steps[10].args[0]["visible"] == [True] * 11  # all input
    assert slider.steps[3].args[0]["visible"] == [True, True, True, True] + [False] * 7
    assert slider.steps[3].args[1]["shapes"][0]["x0"] == pytest.approx(18 - 0.5)  # the split line follows
    assert [t.visible for t in fig.data] == slider.steps[5].args[0]["visible"]  # drawn as the active step


def test_before_after_figure_enlarges_a_small_input_and_reduces_large_images():
    small, big = np.zeros((10, 10)), np.ones((20, 20))
    fig = rv.before_after_figure(small, big, strips=4)
    assert sum(_decode(t.source).shape[1] for t in fig.data[1:]) == 20
    huge = rv.before_after_figure(np.zeros((1000, 800)), np.ones((1000, 800)), max_side=250)
    assert _decode(huge.data[0].source).shape[:2] == (250, 200)
    with pytest.raises(rv.InputError):
        rv.before_after_figure(small, big, strips=1)
    with pytest.raises(rv.InputError):
        rv.before_after_figure(np.zeros((2, 2, 2, 2)), big)


def test_kernel_figure_shows_the_kernel_with_its_scale():
    from engine.dip.operators import gaussian_kernel

    k = gaussian_kernel(2.0)
    fig = rv.kernel_figure(k)
    hm = fig.data[0]
    assert hm.type == "heatmap" and np.allclose(hm.z, k) and hm.colorbar.title.text == "weight"
    assert hm.x[0] == -hm.x[-1] and hm.zmax == pytest.approx(k.max())
    assert f"{k.shape[0]}×{k.shape[1]} px" in fig.layout.title.text and "sum 1" in fig.layout.title.text
    assert np.allclose(rv.kernel_figure(k[None, None]).data[0].z, k)  # a (1, 1, h, w) tensor layout
    with pytest.raises(rv.InputError):
        rv.kernel_figure(np.ones(5))
    with pytest.raises(rv.InputError):
        rv.kernel_figure(np.full((3, 3), np.nan))


def test_result_table_reads_like_a_table():
    summary = {"stop": "detected", "es_fired": True, "es_iteration": 143, "stopped_iteration": 243,
               "es_psnr": 28.1234, "peak_psnr": 28.5, "peak_iteration": 150, "input_psnr": 20.0,
               "wall_seconds": 12.345, "device": "cpu", "preset": "fast-preview", "warnings": [],
               "es_psnr_vs_input": None}
    rows = rv.result_table(summary)
    by = {r["name"]: (r["value"], r["unit"]) for r in rows}
    assert by["Detected stop t*"] == ("143", "iteration")
    assert by["PSNR at t* vs reference"] == ("28.12", "dB")
    assert by["Wall time"] == ("12.3", "s") and by["Device"] == ("cpu", "") and by["Preset"] == ("fast-preview", "")
    assert by["How the run ended"][0].startswith("detected stop")
    assert "PSNR at t* vs input" not in by  # None is left out
    assert all(set(r) == {"name", "value", "unit"} and all(isinstance(x, str) for x in r.values()) for r in rows)
    user = rv.result_table({"stop": "user", "es_fired": False, "es_iteration": 9,
                            "warnings": ["The run was stopped by the user at iteration 12"]})
    assert user[1]["name"] == "Best candidate t* (not a detected stop)"
    assert user[-1] == {"name": "Warning", "value": "The run was stopped by the user at iteration 12", "unit": ""}
    budget = rv.result_table({"state": "done", "es_fired": False, "es_iteration": 9})
    assert budget[0]["value"] == "iteration budget spent" and budget[1]["name"].startswith("t* (minimum within")
    assert rv.result_table({}) == []


def test_scrub_choices_reach_t_star():
    assert rv.scrub_choices([0, 50, 100, 150], 143) == ([0, 50, 100, 143, 150], 143)
    assert rv.scrub_choices([0, 50, 100], 100) == ([0, 50, 100], 100)
    assert rv.scrub_choices([0, 50], None) == ([0, 50], 50)
    assert rv.scrub_choices([], None) == ([], None)
    assert rv.scrub_choices([], 7) == ([7], 7)


# ----------------------------------------------------------------------------- the workflow's summary

def _images():
    clean = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    noisy = np.clip(clean + 0.1 * np.random.default_rng(1).standard_normal(clean.shape), 0, 1)
    return noisy.astype(np.float32), clean


def _run_inline(params: dict, cancel_at: int | None = None) -> tuple[str, dict, list[dict], object]:
    from engine.jobs.manager import run_inline
    from engine.runs import RunStore

    run = RunStore().create({"kind": "restore", "params": {"task": "denoise", "preset": "fast-preview", **params}})
    noisy, clean = _images()
    run.save_array("observed", noisy)
    run.save_array("reference", clean)
    ev, extras = threading.Event(), []

    def on_publish(it: int, row: dict, extra: dict) -> None:
        extras.append(extra)
        if cancel_at is not None and it >= cancel_at:
            ev.set()

    state, summary = run_inline(run, device="cpu", on_publish=on_publish, cancel_event=ev)
    return state, summary, extras, run


def test_a_forced_stop_is_recorded_with_its_warning():
    state, summary, extras, run = _run_inline({"max_iters": 200, "window": 3, "patience": 1000}, cancel_at=8)
    assert state == "cancelled"
    assert summary["stop"] == "user" and summary["es_fired"] is False
    assert summary["stopped_iteration"] == 8 and summary["es_iteration"] is not None
    (warning,) = summary["warnings"]
    assert warning.startswith("The run was stopped by the user at iteration 8 before the detector decided")
    assert f"t* = {summary['es_iteration']}, not a detected stop" in warning
    assert {"es_psnr_vs_input", "last_psnr_vs_input", "es_psnr", "last_psnr"} <= set(summary)
    assert run.read_json("summary.json")["warnings"] == [warning]  # what the CLI and the page read
    assert all(e.get("es_window") == 3 for e in extras)


def test_a_budget_stop_and_a_detected_stop():
    _, budget, _, _ = _run_inline({"max_iters": 12, "window": 3, "patience": 1000})
    assert budget["stop"] == "budget" and not budget["es_fired"]
    assert "ran out before the detector fired" in budget["warnings"][0]
    _, short, _, _ = _run_inline({"max_iters": 4, "window": 8, "patience": 1000})
    assert short["es_iteration"] is None and "window never filled" not in short["warnings"][0]
    assert "the window had not filled" in short["warnings"][0]
    _, detected, _, _ = _run_inline({"max_iters": 300, "window": 3, "patience": 4})
    assert detected["stop"] == "detected" and detected["es_fired"] and detected["warnings"] == []


@pytest.mark.parametrize("stop", ["user", "budget"])
def test_no_detector_no_detector_warning(stop):
    from engine.dip.workflow import stop_warning

    w = stop_warning(stop, stopped_iteration=5, es_iteration=None, max_iters=9, stopping="none")
    assert (w is None) == (stop == "budget")


def test_before_after_on_an_image_narrower_than_its_strips():
    from ui.views.restoration import before_after_figure

    fig = before_after_figure(np.zeros((6, 5, 3), np.float32), np.ones((6, 5, 3), np.float32), strips=20)
    assert len(fig.data) == 1 + 5 and len(fig.layout.sliders[0].steps) == 6

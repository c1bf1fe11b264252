"""AppTest of "Edit as a new run": a run's settings come back into its page's widgets, and the run closes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.runs import RunStore

SCREENS = Path(__file__).resolve().parents[2] / "ui" / "screens"


def _page(name: str) -> str:
    return str(SCREENS / name)


def _run(store: RunStore, kind: str, params: dict, *, state: str = "done", arrays: dict | None = None):
    run = store.create({"kind": kind, "params": params}, label=kind)
    for name, arr in (arrays or {}).items():
        run.save_array(name, arr)
    run.set_status(state=state, iteration=0)
    return run


def _damage(run, **params) -> None:
    spec = run.spec
    spec["params"].update(params)
    (run.path / "spec.json").write_text(json.dumps(spec))


def _edit(page: str, rid: str) -> AppTest:
    """The page opened as the Runs page's "Edit as a new run" opens it."""
    at = AppTest.from_file(page, default_timeout=60)
    at.query_params["edit"] = rid
    return at.run()


def _texts(at: AppTest, what: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, what))


def _submitted(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Press Run with the job manager's submit replaced: the spec the page would submit (no job runs)."""
    from ui.jobs import manager

    seen: dict = {}

    def fake_submit(spec, arrays=None, label=None):  # noqa: ANN001, ANN202
        seen.update(spec)
        raise RuntimeError("not submitted in this test")

    monkeypatch.setattr(manager(), "submit", fake_submit)
    at.button(key="run").click().run()
    monkeypatch.undo()
    assert seen, "the page did not submit"
    return seen


def _skipped(at: AppTest) -> list[str]:
    """The edit's message about settings it could not restore (other warnings are the page's own)."""
    return [str(w.value) for w in at.warning if str(w.value).startswith("Not restored")]


def _qp(at: AppTest) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


# ----------------------------------------------------------------------------- restoration

RESTORE = {"task": "denoise", "simulate": True, "sample": "camera", "size": 64, "corrupt": "gaussian_sigma",
           "severity": 40, "preset": "fast-preview", "loss": "l1", "stopping": "emv", "window": 7, "patience": 33,
           "max_iters": 120, "run_to_budget": True, "seed": 5, "label": "camera", "device": "cpu"}


def test_restoration_takes_a_runs_settings(_runs_dir, monkeypatch):
    run = _run(RunStore(_runs_dir), "restore", RESTORE)
    at = _edit(_page("restoration.py"), run.id)
    assert not at.exception
    assert at.radio(key="source").value == "Bundled sample"
    assert at.selectbox(key="sample").value == "camera"
    assert at.selectbox(key="size").value == 64
    assert at.selectbox(key="corruption").value == "gaussian_sigma"
    assert at.slider(key="sigma").value == 40
    assert at.selectbox(key="preset").value == "fast-preview"
    # inside the "Advanced" expander, and not overwritten by the preset's own W, P and budget
    assert at.selectbox(key="loss").value == "l1" and at.selectbox(key="stopping").value == "emv"
    assert at.number_input(key="window").value == 7 and at.number_input(key="patience").value == 33
    assert at.number_input(key="max_iters").value == 120 and at.number_input(key="seed").value == 5
    assert at.checkbox(key="to_budget").value is True
    assert "edit" not in at.query_params and "run" not in at.query_params
    assert f"settings of run `{run.id}` are filled in" in _texts(at, "info")
    assert not _skipped(at)
    # still there after the user changes a setting; Run submits them
    at.number_input(key="seed").set_value(6).run()
    assert at.number_input(key="max_iters").value == 120 and not at.button(key="run").disabled
    spec = _submitted(at, monkeypatch)
    assert spec["kind"] == "restore"
    kept = [k for k in RESTORE if k not in ("seed", "device")]  # the device is this machine's
    assert {k: spec["params"].get(k) for k in kept} == {k: RESTORE[k] for k in kept}
    assert spec["params"]["seed"] == 6


def test_restoration_edit_from_the_run_header(_runs_dir):
    run = _run(RunStore(_runs_dir), "restore", dict(RESTORE, task="sr", factor=2, preset="cpu"),
               state="cancelled")
    at = AppTest.from_file(_page("restoration.py"), default_timeout=60)
    at.query_params["run"] = run.id
    at.run()
    assert at.selectbox(key="task").value == "denoise"  # the page's default, before the edit
    at.button(key=f"edit-{run.id}").click().run()
    assert not at.exception
    assert "run" not in _qp(at)
    assert at.selectbox(key="task").value == "sr" and at.selectbox(key="factor").value == 2
    assert at.selectbox(key="preset").value == "cpu" and at.number_input(key="max_iters").value == 120
    assert not any(b.key == f"edit-{run.id}" for b in at.button)  # the run view is closed


def test_restoration_skips_a_damaged_value_and_says_so(_runs_dir):
    run = _run(RunStore(_runs_dir), "restore", RESTORE)
    _damage(run, size=999, seed="five", preset=["cpu"], loss=None, window=True)
    at = _edit(_page("restoration.py"), run.id)
    assert not at.exception
    assert at.selectbox(key="size").value == 256 and at.number_input(key="seed").value == 0  # the defaults
    from engine.core.device import pick_device
    from engine.dip.presets import PRESETS, default_preset

    assert at.number_input(key="window").value == PRESETS[default_preset(pick_device(None))].window
    assert at.selectbox(key="sample").value == "camera" and at.number_input(key="max_iters").value == 120
    warned = _texts(at, "warning")
    assert "Size: the run has 999, which this page does not offer" in warned
    assert "Seed: the run has 'five', not a whole number" in warned
    assert "Preset" in warned and "Loss: not recorded in the run" in warned
    assert "Window W: the run has True, not a whole number" in warned


def test_restoration_says_an_upload_must_be_given_again(_runs_dir):
    params = {k: v for k, v in RESTORE.items() if k not in ("sample", "size", "corrupt", "severity")}
    run = _run(RunStore(_runs_dir), "restore", dict(params, simulate=False, label="holiday"))
    at = AppTest.from_file(_page("restoration.py"), default_timeout=60).run()  # the solver widgets are drawn
    at.query_params["edit"] = run.id
    at.run()
    assert not at.exception
    assert at.radio(key="source").value == "Upload"
    assert "uploaded file (holiday)" in _texts(at, "warning") and "upload it again" in _texts(at, "warning")
    # the page waits for the file; the settings it draws after the upload are kept until then
    at.run()
    # what the page draws after the upload waits for it: seen here by drawing it with a sample instead
    at.radio(key="source").set_value("Bundled sample").run()
    assert not at.exception
    assert at.number_input(key="max_iters").value == 120 and at.number_input(key="seed").value == 5
    assert at.selectbox(key="preset").value == "fast-preview"


def test_an_unknown_run_is_refused_in_words(_runs_dir):
    at = _edit(_page("restoration.py"), "../../etc/passwd")
    assert not at.exception
    assert "No settings to edit" in _texts(at, "error")
    other = _run(RunStore(_runs_dir), "mri", {"preset": "cpu"})
    at = _edit(_page("restoration.py"), other.id)
    assert not at.exception and "cannot take its settings" in _texts(at, "error")


# ----------------------------------------------------------------------------- MRI

MRI = {"image": "phantom", "size": 64, "mask_kind": "equispaced", "acceleration": 8, "noise_sigma": 0.02,
       "preset": "fast-preview", "max_iters": 300, "seed": 3, "device": "cpu", "source": "simulated",
       "shape": [64, 64], "measured_acceleration": 7.9}


def test_mri_takes_a_runs_settings(_runs_dir):
    run = _run(RunStore(_runs_dir), "mri", MRI)
    at = _edit(_page("mri.py"), run.id)
    assert not at.exception
    assert at.selectbox(key="mri_src").value == "phantom" and at.selectbox(key="mri_size").value == 64
    assert at.selectbox(key="mri_mask_kind").value == "equispaced" and at.selectbox(key="mri_acc").value == 8
    assert at.select_slider(key="mri_noise").value == 0.02
    assert at.selectbox(key="mri_preset").value == "fast-preview"
    assert at.number_input(key="mri_iters").value == 300 and at.number_input(key="mri_seed").value == 3
    assert not _skipped(at) and "run" not in at.query_params


def test_mri_skips_a_damaged_value_and_says_an_upload_must_be_given_again(_runs_dir):
    run = _run(RunStore(_runs_dir), "mri", dict(MRI, image="upload image", acceleration=3, seed=-1))
    at = _edit(_page("mri.py"), run.id)
    assert not at.exception
    assert at.selectbox(key="mri_src").value == "upload image" and at.selectbox(key="mri_size").value == 64
    warned = _texts(at, "warning")
    assert "Acceleration: the run has 3, which this page does not offer" in warned
    assert "Seed: the run has -1, outside 0 to" in warned
    assert "The image was an uploaded file" in warned and "upload it again" in warned
    measured = _run(RunStore(_runs_dir), "mri", {"source": "measured", "mask_kind": "file", "acceleration": None,
                                                 "preset": "cpu", "max_iters": 0, "seed": 0})
    at = _edit(_page("mri.py"), measured.id)
    assert not at.exception
    assert at.selectbox(key="mri_src").value == "upload k-space"
    assert "The k-space was an uploaded file" in _texts(at, "warning")


# ----------------------------------------------------------------------------- CDI

CDI = {"recipe": "ER**100*(Sup*RAAR**50)**10", "recipe_preset": "RAAR only", "starts": 2, "seed": 9,
       "options": {"beta_hio": 0.8, "beta_raar": 0.7, "threshold": 0.2, "free_fraction": 0.05, "positivity": True},
       "average": 1, "publish_every": 10, "label": "sim-coffee-64", "mask_zeros": "all",
       "simulation": {"sample": "coffee", "size": 64, "photons_log10": 7.5, "oversampling": 3.0, "beamstop": 2.0,
                      "gap": False, "seed": 4, "given_mask": False},
       "initial_support": {"mode": "disc", "disc_size": 55}}


def test_cdi_takes_a_runs_settings(_runs_dir):
    run = _run(RunStore(_runs_dir), "cdi", CDI)
    at = _edit(_page("phase_retrieval.py"), run.id)
    assert not at.exception
    assert at.radio(key="source").value == "Simulate a pattern"
    assert at.selectbox(key="sample").value == "coffee" and at.selectbox(key="size").value == 64
    assert at.slider(key="photons").value == 7.5 and at.slider(key="oversampling").value == 3.0
    assert at.slider(key="beamstop").value == 2.0 and at.checkbox(key="gap").value is False
    assert at.number_input(key="sim_seed").value == 4 and at.checkbox(key="sim_mask").value is False
    assert at.radio(key="mask_zeros").value == "all"
    assert at.radio(key="support_mode").value == "disc" and at.slider(key="disc_size").value == 55
    assert at.selectbox(key="preset").value == "RAAR only"
    assert at.number_input(key="starts").value == 2 and at.number_input(key="seed").value == 9
    assert at.slider(key="beta_hio").value == 0.8 and at.slider(key="free").value == 0.05  # in "Advanced"
    assert at.checkbox(key="positivity").value is True and at.number_input(key="average").value == 1
    assert not _skipped(at) and "run" not in at.query_params


def test_cdi_dip_run_and_a_damaged_value(_runs_dir):
    params = dict(CDI, solver="dip", dip={"preset": "pr", "max_iters": 400, "obj": "real", "loss": "poisson",
                                          "lr": 0.02, "patience": 60, "shrink_every": 100},
                  options={"autocorr_threshold": 0.25}, initial_support={"mode": "autocorrelation"})
    params["simulation"] = dict(CDI["simulation"], oversampling=9.0)
    run = _run(RunStore(_runs_dir), "cdi", params)
    at = _edit(_page("phase_retrieval.py"), run.id)
    assert not at.exception
    assert at.radio(key="solver").value == "dip" and at.number_input(key="dip_iters").value == 400
    assert at.radio(key="dip_object").value == "real" and at.radio(key="dip_loss").value == "poisson"
    assert at.number_input(key="dip_lr").value == 0.02 and at.number_input(key="dip_shrink").value == 100
    assert at.slider(key="ac_threshold").value == 0.25
    assert at.slider(key="oversampling").value == 2.5  # the default
    assert "Oversampling: the run has 9.0, outside 2.0 to 4.0" in _texts(at, "warning")


# ----------------------------------------------------------------------------- generalized PR

GPR = {"signal": "random", "n": 32, "model": "cdp", "L": 6, "noise": 0.05, "algorithm": "gs", "init": "spectral",
       "iters": 300, "seed": 7}
SWEEP = {"n": 32, "ratios": "2,4", "trials": 3, "model": "real-gaussian", "algorithms": ["wf", "gs:optimal"],
         "tol": 1e-4, "seed": 2, "iters": 50}


def test_generalized_pr_takes_a_runs_settings(_runs_dir):
    run = _run(RunStore(_runs_dir), "gpr", GPR)
    at = _edit(_page("generalized_pr.py"), run.id)
    assert not at.exception
    assert at.selectbox(key="gpr_signal").value == "random" and at.select_slider(key="gpr_n").value == 32
    assert at.selectbox(key="gpr_model").value == "cdp" and at.slider(key="gpr_L").value == 6
    assert at.slider(key="gpr_noise").value == 0.05 and at.selectbox(key="gpr_alg").value == "gs"
    assert at.selectbox(key="gpr_init").value == "spectral"
    assert at.number_input(key="gpr_iters_gs").value == 300 and at.number_input(key="gpr_seed").value == 7
    assert not _skipped(at) and "run" not in at.query_params


def test_a_sweep_takes_its_settings_from_its_header(_runs_dir):
    store = RunStore(_runs_dir)
    run = _run(store, "gpr_sweep", dict(SWEEP, algorithms=["wf", "no-such-algorithm"]), state="failed")
    at = AppTest.from_file(_page("generalized_pr.py"), default_timeout=60)
    at.query_params["sweep"] = run.id
    at.run()
    at.button(key=f"edit-{run.id}").click().run()
    assert not at.exception
    assert "sweep" not in at.query_params
    assert at.selectbox(key="sw_model").value == "real-gaussian" and at.number_input(key="sw_n").value == 32
    assert at.text_input(key="sw_ratios_False").value == "2,4" and at.number_input(key="sw_trials").value == 3
    assert at.select_slider(key="sw_tol").value == 1e-4 and at.number_input(key="sw_iters").value == 50
    assert at.multiselect(key="sw_algs").value == ["wf", "taf", "gs:optimal"]  # the default: one was unknown
    assert "Algorithms: the run has 'no-such-algorithm', which this page does not offer" in _texts(at, "warning")
    good = _run(store, "gpr_sweep", SWEEP)
    at = _edit(_page("generalized_pr.py"), good.id)
    assert at.multiselect(key="sw_algs").value == ["wf", "gs:optimal"] and not _skipped(at)


# ----------------------------------------------------------------------------- the Runs page

def test_the_runs_page_opens_the_page_of_the_run_with_its_settings(_runs_dir):
    store = RunStore(_runs_dir)
    run = _run(store, "restore", RESTORE, arrays={"observed": np.zeros((64, 64), np.float32)})
    at = AppTest.from_file(str(SCREENS.parent / "app.py"), default_timeout=60).run()
    at.switch_page("screens/runs.py").run()
    assert not at.button(key="edit-run").disabled
    at.button(key="edit-run").click().run()
    assert not at.exception
    assert "restoration" in at.title[0].value.lower()
    assert "edit" not in at.query_params and "run" not in at.query_params
    assert at.selectbox(key="size").value == 64 and at.number_input(key="max_iters").value == 120
    assert f"settings of run `{run.id}` are filled in" in _texts(at, "info")


def test_the_runs_page_offers_no_edit_where_the_page_cannot_take_one(_runs_dir):
    # an X-ray batch has no settings: its input is the uploaded films
    _run(RunStore(_runs_dir), "xray", {"model": "default", "images": []})
    at = AppTest.from_file(str(SCREENS / "runs.py"), default_timeout=30).run()
    assert not at.exception and at.button(key="edit-run").disabled


# ----------------------------------------------------------------------------- federated

def test_federated_takes_a_runs_settings(_runs_dir, tmp_path):
    params = {"data": str(tmp_path / "cxr"), "sites": 3, "rounds": 7, "norm": "gn", "size": 96, "max_films": 0,
              "regimes": ["centralised", "local"]}
    run = _run(RunStore(_runs_dir), "federated", params)
    at = _edit(_page("federated.py"), run.id)
    assert not at.exception
    assert at.text_input(key="fl_data").value == str(tmp_path / "cxr")
    assert at.number_input(key="fl_sites").value == 3 and at.number_input(key="fl_rounds").value == 7
    assert at.selectbox(key="fl_norm").value == "gn" and at.select_slider(key="fl_size").value == 96
    assert at.number_input(key="fl_films").value == 0
    assert at.multiselect(key="fl_regimes").value == ["centralised", "local"]
    assert not _skipped(at) and "run" not in at.query_params
    # a run from the command line: a film size this page does not offer, and epochs it has no widget for
    cli = _run(RunStore(_runs_dir), "federated", dict(params, size=16, epochs=3))
    at = _edit(_page("federated.py"), cli.id)
    assert not at.exception and at.select_slider(key="fl_size").value == 64
    warned = _texts(at, "warning")
    assert "Film size: the run has 16, which this page does not offer" in warned
    assert "Local epochs per round was 3 in this run" in warned

"""``inverse-studio pr``: the mask options and the summary's diagnostics."""

from __future__ import annotations

import json

import numpy as np

from engine.cli import main as cli_main


def _pattern(tmp_path, beamstop):
    from engine.cdi.simulate import simulate_pattern

    sim = simulate_pattern(shape=(64, 64), photons=1e8, beamstop=beamstop, seed=0)
    np.save(tmp_path / "p.npy", sim.intensity)  # the beamstop reads 0, with no mask file
    return sim


def test_cli_masks_zeros_and_reports(tmp_path, capsys):
    sim = _pattern(tmp_path, 4)
    out = tmp_path / "out"
    rc = cli_main(["pr", str(tmp_path / "p.npy"), "--out", str(out), "--recipe", "ER**5*(Sup*HIO**5)**2",
                   "--starts", "1", "--quiet", "--threads", "1"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["mask"]["mode"] == "auto" and s["mask"]["auto_masked"] >= sim.mask.sum()
    assert s["mask"]["masked_total"] == s["input_stats"]["masked"]
    assert isinstance(s["warnings"], list) and s["warnings"]
    assert "support_history" in s and "llk_per_pixel" in s and s["support_source"] == "autocorrelation"
    err = capsys.readouterr().err
    assert sum(line.startswith("warning: ") for line in err.splitlines()) == len(s["warnings"])
    assert any("beamstop" in w for w in s["warnings"])


def test_cli_mask_zeros_none_and_saturation(tmp_path, capsys):
    sim = _pattern(tmp_path, 4)
    out = tmp_path / "out"
    level = float(np.sort(sim.intensity.ravel())[-3])
    rc = cli_main(["pr", str(tmp_path / "p.npy"), "--out", str(out), "--recipe", "ER**5", "--starts", "1",
                   "--quiet", "--mask-zeros", "none", "--saturation", str(level)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["mask"]["mode"] == "none" and s["mask"]["auto_masked"] == 0 and s["mask"]["saturated"] >= 3
    assert cli_main(["pr", str(tmp_path / "p.npy"), "--out", str(out), "--mask-zeros", "some"]) == 2
    assert cli_main(["pr", str(tmp_path / "p.npy"), "--out", str(out), "--saturation", "-1"]) == 2


def test_page_job_and_cli_give_the_same_object(tmp_path):
    """The job the Beamline CDI page submits and ``inverse-studio pr`` agree for one file and settings."""
    from engine.cdi.readers import load_diffraction
    from engine.jobs import run_inline
    from engine.runs import RunStore

    sim = _pattern(tmp_path, 4)
    recipe = "ER**10*(Sup*HIO**10)**2"
    out = tmp_path / "cli"
    assert cli_main(["pr", str(tmp_path / "p.npy"), "--out", str(out), "--recipe", recipe, "--starts", "2",
                     "--seed", "3", "--quiet", "--threads", "1", "--device", "cpu"]) == 0
    # what the page does: decode without zero masking, then the job finds the zero groups itself
    data = load_diffraction(tmp_path / "p.npy", mask_zeros="none")
    run = RunStore(tmp_path / "runs").create({"kind": "cdi", "params": {
        "recipe": recipe, "starts": 2, "seed": 3, "average": 0, "mask_zeros": "auto"}})
    run.save_array("intensity", data.intensity)
    run.save_array("mask", data.mask.astype(np.uint8))
    state, summary = run_inline(run, device="cpu")
    assert state == "done"
    with np.load(out / "object.npz") as a, np.load(run.path / "object.npz") as b:
        np.testing.assert_array_equal(a["object"], b["object"])
    cli = json.loads((out / "summary.json").read_text())
    assert cli["mask"]["masked_total"] == summary["mask"]["masked_total"]
    assert cli["warnings"] == summary["warnings"]
    assert sim.mask.sum() > 0


def _tiny(tmp_path):
    from engine.cdi.simulate import simulate_pattern

    sim = simulate_pattern(shape=(32, 32), photons=1e6, beamstop=1, seed=1)
    np.save(tmp_path / "t.npy", sim.intensity)
    return sim


def test_cli_dip_prior_writes_the_classic_files_and_says_es_did_not_fire(tmp_path, capsys):
    _tiny(tmp_path)
    out = tmp_path / "dip"
    rc = cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(out), "--solver", "dip", "--dip-iters", "12",
                   "--dip-patience", "1000", "--threads", "1", "--device", "cpu"])
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    assert {"object.npz", "object.png", "object_phase.png", "object.cxi", "prtf.json", "summary.json"} <= names
    s = json.loads((out / "summary.json").read_text())
    assert s["solver"] == "dip" and s["iterations"] == 12 and s["stop"] == "budget"
    assert s["options"]["max_iters"] == 12 and s["options"]["patience"] == 1000
    assert s["mask"]["mode"] == "auto" and "input_stats" in s
    assert any(w.startswith("No early stop fired") for w in s["warnings"])
    err = capsys.readouterr().err
    assert sum(line.startswith("warning: ") for line in err.splitlines()) == len(s["warnings"])
    assert "DIP prior, t* = " in err
    with np.load(out / "object.npz") as z:
        assert z["object"].dtype == np.complex64 and z["objects"].shape[0] == 1
        assert np.isfinite(z["object"]).all() and np.abs(z["object"]).max() > 0


def test_cli_dip_prior_early_stop_and_real_object(tmp_path):
    _tiny(tmp_path)
    out = tmp_path / "dip"
    rc = cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(out), "--solver", "dip", "--dip-iters", "300",
                   "--dip-patience", "3", "--dip-object", "real", "--dip-loss", "poisson", "--quiet",
                   "--threads", "1"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["stop"] == "early-stop" and s["iterations"] < 300 and 1 <= s["es_iteration"] <= s["iterations"]
    assert s["object_model"] == "real" and s["loss"] == "poisson"
    assert not any("No early stop fired" in w for w in s["warnings"])


def test_cli_dip_prior_bad_options_exit_2_before_reading(tmp_path, capsys):
    _tiny(tmp_path)
    assert cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(tmp_path / "a"), "--solver", "dip",
                     "--dip-iters", "0"]) == 2
    assert "--dip-iters must be between" in capsys.readouterr().err
    assert cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(tmp_path / "b"), "--solver", "dip",
                     "--dip-loss", "l1"]) == 2
    # the --out checks apply as for the classic solver: a folder that holds a run is refused
    held = tmp_path / "held"
    held.mkdir()
    (held / "summary.json").write_text("{}")
    assert cli_main(["pr", str(tmp_path / "missing.npy"), "--out", str(held), "--solver", "dip"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_page_job_and_cli_agree_for_the_dip_prior(tmp_path):
    """The job the page submits with the DIP prior and ``pr --solver dip`` give the same object."""
    from engine.cdi.readers import load_diffraction
    from engine.jobs import run_inline
    from engine.runs import RunStore

    _tiny(tmp_path)
    out = tmp_path / "cli"
    assert cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(out), "--solver", "dip", "--dip-iters", "15",
                     "--seed", "2", "--quiet", "--threads", "1", "--device", "cpu"]) == 0
    data = load_diffraction(tmp_path / "t.npy", mask_zeros="none")
    run = RunStore(tmp_path / "runs").create({"kind": "cdi", "params": {
        "solver": "dip", "dip": {"max_iters": 15, "obj": "complex", "loss": "amplitude", "shrink_every": 0},
        "seed": 2, "mask_zeros": "auto", "publish_every": 5}})
    run.save_array("intensity", data.intensity)
    run.save_array("mask", data.mask.astype(np.uint8))
    state, summary = run_inline(run, device="cpu")
    assert state == "done" and summary["solver"] == "dip" and summary["iterations"] == 15
    with np.load(out / "object.npz") as a, np.load(run.path / "object.npz") as b:
        np.testing.assert_allclose(a["object"], b["object"], rtol=1e-5, atol=1e-6)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [5, 10, 15] and all(r["loss"] > 0 for r in rows)


def test_cli_dip_prior_ctrl_c_writes_the_kept_object_and_exits_130(tmp_path, monkeypatch, capsys):
    import signal

    from engine.cdi import dip_prior

    _tiny(tmp_path)
    step = dip_prior.DIPPRSolver.step

    def step_then_ctrl_c(self):  # noqa: ANN001, ANN202
        st = step(self)
        if self.iteration == 5:
            signal.raise_signal(signal.SIGINT)
        return st

    monkeypatch.setattr(dip_prior.DIPPRSolver, "step", step_then_ctrl_c)
    out = tmp_path / "dip"
    rc = cli_main(["pr", str(tmp_path / "t.npy"), "--out", str(out), "--solver", "dip", "--dip-iters", "50",
                   "--quiet", "--threads", "1"])
    assert rc == 130
    s = json.loads((out / "summary.json").read_text())
    assert s["stop"] == "cancelled" and s["iterations"] == 5 and (out / "object.npz").exists()
    assert any(w.startswith("The run was stopped by hand at iteration 5 of 50") for w in s["warnings"])
    assert "stopped by Ctrl-C at iteration 5" in capsys.readouterr().err

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

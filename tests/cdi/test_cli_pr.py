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

"""Robustness of the classifier under ImageNet-C corruptions, and the DIP front end: engine and CLI on tiny films."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.core.errors import InputError
from engine.xray import robustness as rb

CORRUPTIONS = ["gaussian_noise", "contrast"]
SEVERITIES = [1, 5]


def make_films(root: Path, n: int = 5, side: int = 96) -> Path:
    """``n`` NORMAL and ``n`` PNEUMONIA grey PNGs: dark lungs, hazier lungs for PNEUMONIA."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    lungs = ((((xx - 0.3) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2) < 1) | \
        ((((xx - 0.7) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2) < 1)
    for k, label in enumerate(("NORMAL", "PNEUMONIA")):
        (root / label).mkdir(parents=True)
        for i in range(n):
            rng = np.random.default_rng(10 * k + i)
            img = 0.8 - (0.55 - 0.3 * k) * lungs + rng.normal(0, 0.03, lungs.shape)
            name = f"IM-{i:04d}-0001.png" if k == 0 else f"person{i}_bacteria_{i}.png"
            Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).save(root / label / name)
    return root


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_films(tmp_path_factory.mktemp("films"))


@pytest.fixture(scope="module")
def result(films: Path) -> dict:
    return rb.evaluate(films, films=8, dip_films=4, split="all", corruptions=CORRUPTIONS, severities=SEVERITIES,
                       dip_corruptions=["gaussian_noise", "shot_noise"], dip_severities=[5], dip_max_iters=3)


def test_table_has_one_row_per_corruption_and_severity(result: dict) -> None:
    assert [(r["corruption"], r["severity"]) for r in result["rows"]] == [
        (c, s) for c in CORRUPTIONS for s in SEVERITIES]
    for r in [result["clean"], *result["rows"]]:
        assert 0.0 <= r["auc"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 and r["n"] == 8
    assert result["complete"] is True
    assert result["model"]["input_size"] == 160 and result["model"]["threshold"] > 0


def test_films_are_balanced_recorded_and_dip_films_a_subset(result: dict) -> None:
    f = result["films"]
    assert (f["n"], f["normal"], f["pneumonia"]) == (8, 4, 4)
    assert len(f["files"]) == 8 and all(p.split("/")[0] in ("NORMAL", "PNEUMONIA") for p in f["files"])
    assert len(f["dip_files"]) == 4 and set(f["dip_files"]) <= set(f["files"])
    assert sum(p.startswith("NORMAL/") for p in f["dip_files"]) == 2


def test_dip_rows_compare_the_same_films_with_and_without(result: dict) -> None:
    dip = result["dip"]
    assert [(r["corruption"], r["severity"]) for r in dip["rows"]] == [("gaussian_noise", 5), ("shot_noise", 5)]
    for r in dip["rows"]:
        assert r["n"] == r["with"]["n"] == r["without"]["n"] == 4
        assert 0.0 <= r["with"]["auc"] <= 1.0 and 0.0 <= r["without"]["auc"] <= 1.0
        assert r["mean_iterations"] == 3.0  # the cap, as the ES-WMV window cannot fill in 3 steps
    assert dip["clean_with"]["n"] == dip["clean_without"]["n"] == 4
    # the DIP films without DIP are the main sweep's own corrupted films, so a film scores the same
    main_rows = {(r["corruption"], r["severity"]) for r in result["rows"]}
    assert ("gaussian_noise", 5) in main_rows


def test_the_run_is_seeded(films: Path, result: dict) -> None:
    again = rb.evaluate(films, films=8, dip_films=0, split="all", corruptions=CORRUPTIONS, severities=SEVERITIES)
    assert again["rows"] == result["rows"] and again["films"]["files"] == result["films"]["files"]
    other = rb.evaluate(films, films=8, dip_films=0, split="all", corruptions=["gaussian_noise"], severities=[5],
                        seed=3)
    assert other["films"]["seed"] == 3 and "dip" not in other


def test_progress_counts_to_the_total_and_a_stop_keeps_what_is_done(films: Path) -> None:
    seen: list[tuple[int, int]] = []
    rb.evaluate(films, films=4, dip_films=2, split="all", corruptions=["contrast"], severities=[1, 2],
                dip_corruptions=["gaussian_noise"], dip_severities=[1], dip_max_iters=2, dip_clean=False,
                progress=lambda done, total, text: seen.append((done, total)))
    assert seen[-1] == (1 + 2 + 2, 1 + 2 + 2) and [d for d, _ in seen] == list(range(1, 6))
    calls = iter([False, True])  # the first corruption row runs, then the stop is asked for
    part = rb.evaluate(films, films=4, dip_films=2, split="all", corruptions=["contrast"], severities=[1, 2],
                       cancelled=lambda: next(calls, True))
    assert part["complete"] is False and [r["severity"] for r in part["rows"]] == [1] and "dip" not in part


def test_outputs_round_trip(result: dict, tmp_path: Path) -> None:
    jpath, cpath = rb.write_outputs(result, tmp_path / "out")
    assert rb.load_result(jpath) == json.loads(jpath.read_text())
    rows = list(csv.DictReader(cpath.open()))
    assert rows[0]["corruption"] == "clean" and rows[0]["group"] == "clean"
    assert sum(r["group"] == "corruption" for r in rows) == 4
    assert sum(r["group"] == "dip" and r["dip"] == "yes" for r in rows) == 3  # clean + 2 noise rows
    table = rb.markdown_table(result)
    assert "| clean |" in table and "Gaussian noise" in table and "with DIP" in table


def test_load_result_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        rb.load_result(b"{nope")
    with pytest.raises(InputError, match="not a robustness result"):
        rb.load_result(json.dumps({"kind": "other"}).encode())
    with pytest.raises(InputError, match="not found"):
        rb.load_result(tmp_path / "missing.json")


def test_val_split_uses_only_listed_films(films: Path, tmp_path: Path) -> None:
    listed = ["NORMAL/IM-0000-0001.png", "NORMAL/IM-0001-0001.png", "PNEUMONIA/person2_bacteria_2.png"]
    split = tmp_path / "m_val_split.txt"
    split.write_text("\n".join(listed) + "\n")
    items, rec = rb.select_films(films, films=0, split="val", split_file=split)
    assert sorted(f"{p.path.parent.name}/{p.path.name}" for p in items) == sorted(listed)
    assert rec["normal"] == 2 and rec["pneumonia"] == 1 and "m_val_split.txt" in rec["source"]
    split.write_text("NORMAL/elsewhere.png\n")
    with pytest.raises(InputError, match="none of the films"):
        rb.select_films(films, split="val", split_file=split)


def test_val_split_of_a_foreign_folder_is_refused(films: Path) -> None:
    # the held-out model's validation list names files of the training folder, not of this one
    with pytest.raises(InputError, match="none of the films"):
        rb.evaluate(films, films=4, dip_films=0, corruptions=["contrast"], severities=[1])


def test_val_split_without_a_list_is_refused(films: Path, tmp_path: Path) -> None:
    # a model without its validation list may have seen every film (a cross-validated ensemble): no guess
    cfg = json.loads(rb.HELD_OUT_MODEL.read_text())
    shutil.copy(rb.HELD_OUT_MODEL.parent / cfg["weights"], tmp_path / cfg["weights"])
    (tmp_path / "model.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="no validation list"):
        rb.evaluate(films, films=4, dip_films=0, model=tmp_path / "model.json", corruptions=["contrast"],
                    severities=[1])
    res = rb.evaluate(films, films=4, dip_films=0, split="all", model=tmp_path / "model.json",
                      corruptions=["contrast"], severities=[1])
    assert res["films"]["source"] == "every film of the folder" and res["model"]["spec"] == "model.json"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"corruptions": ["rain"]}, "unknown corruption"),
    ({"corruptions": ["gaussian_noise_eswmv"]}, "ImageNet-C"),
    ({"severities": [0]}, "severities"),
    ({"dip_corruptions": ["fog"]}, "unknown DIP corruption"),
    ({"dip_max_iters": 0}, "dip_max_iters"),
])
def test_bad_options_are_input_errors(films: Path, kwargs: dict, match: str) -> None:
    opts = {"films": 4, "dip_films": 2, "split": "all", "corruptions": ["contrast"], "severities": [1], **kwargs}
    with pytest.raises(InputError, match=match):
        rb.evaluate(films, **opts)


def test_missing_class_folder_is_an_input_error(tmp_path: Path) -> None:
    make_films(tmp_path, n=2)
    shutil.rmtree(tmp_path / "PNEUMONIA")
    with pytest.raises(InputError, match="PNEUMONIA"):
        rb.select_films(tmp_path, split="all")


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_writes_json_and_csv(films: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    rc = main(["xray", "robustness", str(films), "--out", str(out), "--split", "all", "--films", "6",
               "--dip-films", "2", "--corruptions", "contrast", "--severities", "1,5",
               "--dip-corruptions", "impulse_noise", "--dip-severities", "3", "--dip-max-iters", "2",
               "--no-dip-clean"])
    assert rc == 0
    res = json.loads((out / "robustness.json").read_text())
    assert [r["severity"] for r in res["rows"]] == [1, 5] and res["films"]["n"] == 6
    assert res["dip"]["rows"][0]["corruption"] == "impulse_noise" and "clean_with" not in res["dip"]
    assert (out / "robustness.csv").read_text().startswith("group,corruption,severity,dip,n,auc")
    assert "| clean |" in capsys.readouterr().out
    # a folder with a result already is refused, so a result is never replaced
    assert main(["xray", "robustness", str(films), "--out", str(out), "--split", "all"]) == 2
    assert "already holds robustness.json" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["/no/such/folder"],
    ["{films}/NORMAL"],
    ["{films}", "--severities", "0,9"],
    ["{films}", "--films", "4", "--dip-films", "6"],
])
def test_cli_bad_input_exits_2_with_one_line(films: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            args: list[str]) -> None:
    argv = [a.format(films=films) for a in args]
    rc = main(["xray", "robustness", *argv, "--out", str(tmp_path / "o"), "--split", "all"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "error:" in err
    assert not (tmp_path / "o").exists()

"""``inverse-studio xray predict``: NOT_ASSESSED rows, one error row per bad file, --redact-paths, --window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from engine.cli.main import main
from tests.ui.test_xray_page import chest_dicom
from tests.xray.test_abstain import chest_png, dicom_with

PHI = ("Doe", "Jane", "MRN123")


def _rows(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _tiny_png(path: Path, rows: int, cols: int) -> Path:
    Image.fromarray(np.full((rows, cols), 128, np.uint8)).save(path)
    return path


def test_out_of_domain_films_are_not_assessed_and_others_keep_their_label(tmp_path, capsys):
    (tmp_path / "adult.dcm").write_bytes(dicom_with(chest_dicom(age="064Y"), Modality="CR"))
    (tmp_path / "child.dcm").write_bytes(chest_dicom())
    (tmp_path / "film.png").write_bytes(chest_png())
    ct = get_testdata_file("CT_small.dcm")
    files = [ct, *(str(tmp_path / n) for n in ("adult.dcm", "child.dcm", "film.png"))]
    assert main(["xray", "predict", *files, "--json"]) == 0
    rows = _rows(capsys)
    assert [r["input"] for r in rows] == files and [r["index"] for r in rows] == [0, 1, 2, 3]
    ct_row, adult, child, film = rows
    for r, word in ((ct_row, "modality CT"), (adult, "age 64")):
        assert r["label"] == "NOT_ASSESSED" and any(word in w for w in r["reasons"])
        assert 0.0 <= r["probability"] <= 1.0  # still reported, for research
    for r in (child, film):
        assert r["label"] in ("NORMAL", "PNEUMONIA") and r["reasons"] == []
    assert child["note"] is None
    assert "cannot be checked" in film["note"] and not any("DICOM header" in w for w in film["warnings"])


def test_bad_files_are_one_error_row_each_and_the_batch_goes_on(tmp_path, capsys):
    good = [tmp_path / "a.png", tmp_path / "b.dcm"]
    good[0].write_bytes(chest_png())
    good[1].write_bytes(chest_dicom())
    bad = [_tiny_png(tmp_path / "one.png", 1, 1), _tiny_png(tmp_path / "strip.png", 1, 40),
           _tiny_png(tmp_path / "three.png", 3, 3), tmp_path / "missing.dcm"]
    files = [good[0], bad[0], bad[1], good[1], bad[2], bad[3]]
    out = tmp_path / "ov"
    code = main(["xray", "predict", *map(str, files), "--json", "--batch", "4", "--saliency", "gradcam",
                 "--out", str(out)])
    rows = _rows(capsys)
    assert code == 1 and len(rows) == len(files)
    assert [r["input"] for r in rows] == [str(f) for f in files]
    errors = [r for r in rows if "error" in r]
    assert [r["input"] for r in errors] == [str(f) for f in bad]
    for r in errors:
        assert set(r) == {"index", "input", "path", "error"}
        assert r["error"] and "\n" not in r["error"] and "Traceback" not in r["error"]
        assert Path(r["input"]).name in r["error"]
    assert "8x8" in errors[2]["error"]
    for r in rows:
        if "error" not in r:
            assert r["label"] in ("NORMAL", "PNEUMONIA") and Path(r["saliency"]).is_file()
    mapping = json.loads((out / "inputs.json").read_text(encoding="utf-8"))["inputs"]
    assert [m["input"] for m in mapping] == [str(f) for f in files]
    assert mapping[0]["saliency"] == "image0000_gradcam.png" and mapping[1]["saliency"] is None


def test_redact_paths_keeps_names_and_ages_out_of_every_output(tmp_path, capsys):
    old = tmp_path / "Doe_Jane_MRN123.dcm"
    old.write_bytes(chest_dicom(age="094Y"))  # PatientName Doe^Jane in the header too
    child = tmp_path / "Doe_Jane_MRN123_child.dcm"
    child.write_bytes(chest_dicom())
    scout = _tiny_png(tmp_path / "Doe_Jane_MRN123_scout.png", 1, 1)
    out = tmp_path / "ov"
    code = main(["xray", "predict", str(old), str(scout), str(child), "--json", "--redact-paths",
                 "--saliency", "gradcam", "--out", str(out)])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1 and [r["input"] for r in rows] == [0, 1, 2]
    assert rows[0]["label"] == "NOT_ASSESSED" and "90+" in rows[0]["reasons"][0]
    assert "error" in rows[1] and rows[2]["label"] in ("NORMAL", "PNEUMONIA")
    # the numbers (probability, threshold) may hold the digits 94 by chance; every other value may not
    text = json.dumps([{k: v for k, v in r.items() if not isinstance(v, float)} for r in rows])
    for value in (*PHI, "94"):
        assert value.lower() not in text.lower(), value
        assert value.lower() not in captured.err.lower(), value
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert written == ["image0002_gradcam.png"]  # named by index; no inputs.json mapping when redacting
    data = (out / written[0]).read_bytes()
    assert not any(value.encode() in data for value in PHI)
    chunks, pos = [], 8
    while pos < len(data):  # a PNG with no text chunk carries no metadata at all
        n = int.from_bytes(data[pos:pos + 4], "big")
        chunks.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += 12 + n
    assert set(chunks) == {"IHDR", "IDAT", "IEND"}


def test_window_and_invert_change_the_overlay_only(tmp_path, capsys):
    film = tmp_path / "child.dcm"
    film.write_bytes(chest_dicom())
    runs = {}
    for name, extra in (("plain", []), ("lung", ["--window", "lung", "--invert"]), ("cw", ["--window", "2000,800"])):
        out = tmp_path / name
        assert main(["xray", "predict", str(film), "--json", "--saliency", "gradcam", "--out", str(out),
                     *extra]) == 0
        (row,) = _rows(capsys)
        runs[name] = (row["probability"], row["label"], (out / "image0000_gradcam.png").read_bytes())
    assert runs["plain"][:2] == runs["lung"][:2] == runs["cw"][:2]
    assert len({runs[k][2] for k in runs}) == 3


@pytest.mark.parametrize("value", ["widest", "40", "40,-1", "a,b"])
def test_bad_window_is_bad_usage(tmp_path, capsys, value):
    assert main(["xray", "predict", str(tmp_path / "x.png"), "--window", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--window" in err[0]

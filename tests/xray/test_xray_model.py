"""Chest X-ray classifier: data split, calibration, the shipped weights, TorchScript models, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.cli import main
from engine.core.errors import InputError
from engine.xray import calibration as cal
from engine.xray.data import Item, decode_grey, patient_id, split_by_patient
from engine.xray.predict import DEFAULT_MODEL, Classifier, sha256_file
from tests.conftest import shared_data


def _chest_like(size: int = 96, seed: int = 0) -> np.ndarray:
    """Synthetic grey image: two dark 'lungs' in a brighter body, with noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.7 - 0.4 * (((xx - 0.3) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1)
    img = img - 0.4 * (((xx - 0.7) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1)
    return np.clip(img + np.random.default_rng(seed).normal(0, 0.03, img.shape), 0, 1).astype(np.float32)


# ---------------------------------------------------------------- data and calibration


def test_patient_ids():
    assert patient_id("person123_bacteria_456.jpeg", "PNEUMONIA") == "PNEUMONIA/person123"
    assert patient_id("person123_virus_789.jpeg", "PNEUMONIA") == "PNEUMONIA/person123"
    assert patient_id("IM-0115-0001.jpeg", "NORMAL") == "NORMAL/IM-0115"
    assert patient_id("NORMAL2-IM-0383-0001.jpeg", "NORMAL") == "NORMAL/NORMAL2-IM-0383"
    assert patient_id("odd.png", "NORMAL") == "NORMAL/odd"


def test_split_keeps_patients_together_and_is_seeded():
    items = [Item(Path(f"p{i}_{j}.jpeg"), i % 2, f"p{i}") for i in range(60) for j in range(1 + i % 4)]
    tr, va = split_by_patient(items, val_fraction=0.2, seed=3)
    assert sorted(tr + va) == list(range(len(items)))
    assert not {items[i].patient for i in tr} & {items[i].patient for i in va}
    for k in (0, 1):  # stratified: each class near its 20%
        n_k = sum(it.label == k for it in items)
        assert 0.1 * n_k <= sum(items[i].label == k for i in va) <= 0.35 * n_k
    assert split_by_patient(items, val_fraction=0.2, seed=3) == (tr, va)


def test_temperature_and_threshold():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_logit = rng.normal(0, 2, 4000) + np.where(y == 1, 1.0, -1.0)
    y = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    logits = np.stack([np.zeros(4000), 3.0 * true_logit], 1)  # over-confident by 3x
    assert cal.fit_temperature(logits, y) == pytest.approx(3.0, rel=0.1)
    assert cal.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    t = cal.youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]))
    assert 0.2 < t < 0.7
    m = cal.binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]), 0.5)
    assert m["sensitivity"] == 1.0 and m["specificity"] == 0.5 and m["accuracy"] == 0.75
    ci = cal.bootstrap_ci(y[:300], 1 / (1 + np.exp(-true_logit[:300])), 0.5, n=100)
    assert ci["auc"][0] < ci["auc"][1]


def test_decode_grey_png_and_corrupt(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(p)
    img = decode_grey(p, size=16)
    assert img.shape == (16, 16) and abs(float(img.mean()) - 128 / 255) < 1e-3
    with pytest.raises(InputError, match="cannot decode"):
        decode_grey(b"not an image")


# ---------------------------------------------------------------- shipped weights


def test_committed_weights_match_sha256_and_card():
    cfg = json.loads(DEFAULT_MODEL.read_text())
    assert cfg["format"] == "ensemble" and len(cfg["members"]) >= 2
    digests = (DEFAULT_MODEL.parent / f"{cfg['name']}.sha256").read_text().splitlines()
    listed = dict(line.split()[::-1] for line in digests)
    card = (DEFAULT_MODEL.parent / f"{cfg['name']}.md").read_text()
    assert "CC BY 4.0" in card and "10.17632/rscbjbr9sj.2" in card and f"v{cfg['version']}" in card
    # the card says plainly what the independent test of v1.0 gave, beside the cross-validated figures
    assert "0.960" in card and "0.853" in card and f"{cfg['cross_validation']['metrics']['auc']:.3f}" in card
    total = 0
    for m in cfg["members"]:
        weights = DEFAULT_MODEL.parent / m["weights"]
        digest = sha256_file(weights)
        assert digest == m["sha256"] == listed[m["weights"]]
        total += weights.stat().st_size
        state = torch.load(weights, map_location="cpu", weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert total <= 20 * 2**20


def test_default_model_predicts_on_synthetic_image():
    clf = Classifier.default()
    img = _chest_like()
    label, p = clf.predict(img)
    assert label in ("NORMAL", "PNEUMONIA") and 0.0 <= p <= 1.0
    assert label == ("PNEUMONIA" if p >= clf.threshold else "NORMAL")
    batch = clf.predict_batch([img, _chest_like(200, 1), _chest_like(64, 2)])
    assert batch[0][1] == pytest.approx(p, abs=1e-5)
    sm = clf.saliency(img, "gradcam", "PNEUMONIA")
    assert sm.map.shape == (10, 10) and sm.upsampled.shape == img.shape


def test_damaged_weights_are_refused(tmp_path):
    cfg = json.loads(DEFAULT_MODEL.read_text())
    for m in cfg["members"]:
        shutil.copy2(DEFAULT_MODEL.parent / m["weights"], tmp_path / m["weights"])
    (tmp_path / cfg["members"][1]["weights"]).write_bytes(b"\0" * 100)
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="SHA-256"):
        Classifier.load(tmp_path / "m.json")


def test_members_reproduce_their_out_of_fold_predictions(tmp_path):
    """Each shipped member, on films of its own held-out fold, gives the recorded out-of-fold probability."""
    root = shared_data("cxr-pneumonia", "train")
    cfg = json.loads(DEFAULT_MODEL.read_text())
    rows = [line.split(",") for line in
            (DEFAULT_MODEL.parent / f"{cfg['name']}_oof.csv").read_text().splitlines()[1:]]
    for m in cfg["members"]:
        mine = [r for r in rows if int(r[0]) == m["fold"]]
        pick = mine[:: max(1, len(mine) // 40)][:40]  # every k-th: both classes
        one = {**cfg, "members": [m]}
        shutil.copy2(DEFAULT_MODEL.parent / m["weights"], tmp_path / m["weights"])
        (tmp_path / "one.json").write_text(json.dumps(one))
        p = Classifier.load(tmp_path / "one.json").predict_proba([decode_grey(root / r[1]) for r in pick])
        recorded = np.array([float(r[3]) for r in pick])
        y = np.array([r[2] == "PNEUMONIA" for r in pick])
        assert y.any() and (~y).any()
        assert np.abs(p - recorded).mean() < 0.03, (m["fold"], np.abs(p - recorded).max())
        assert cal.roc_auc(y, p) > 0.9


# ---------------------------------------------------------------- other models


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_model(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "mine.pt"
    torch.jit.save(torch.jit.script(_Tiny()), str(path))
    spec = {"labels": ["NORMAL", "PNEUMONIA"], "input": {"size": 32, "channels": 1, "mean": 0.5, "std": 0.25}}
    (tmp_path / "mine.json").write_text(json.dumps(spec))
    clf = Classifier.load(path)
    assert clf.kind == "torchscript" and clf.input_size == 32
    label, p = clf.predict(_chest_like())
    assert 0 <= p <= 1 and label in ("NORMAL", "PNEUMONIA")
    assert clf.saliency(_chest_like(), "ig", "PNEUMONIA").map.shape == (32, 32)
    with pytest.raises(InputError, match="ig or occlusion"):
        clf.saliency(_chest_like(), "gradcam")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a TorchScript"):
        Classifier.load(tmp_path / "junk.pt")


def test_torchxrayvision_missing_or_weights_absent():
    with pytest.raises(InputError, match="torchxrayvision|weights not found|unknown"):
        Classifier.load("xrv:densenet121-res224-all-not-on-disk")


# ---------------------------------------------------------------- CLI


def test_cli_predict_json_lines_and_error_line(tmp_path, capsys):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for k, name in enumerate(["a.png", "sub/b.png"]):
        Image.fromarray((_chest_like(120, k) * 255).astype(np.uint8)).save(d / name)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = tmp_path / "overlays"
    code = main(["xray", "predict", str(d), "--json", "--saliency", "gradcam", "--out", str(out)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(rows) == 3
    bad = [r for r in rows if "error" in r]
    good = [r for r in rows if "error" not in r]
    assert len(bad) == 1 and bad[0]["path"].endswith("broken.png")
    for r in good:
        assert r["label"] in ("NORMAL", "PNEUMONIA") and 0 <= r["probability"] <= 1
        assert isinstance(r["warnings"], list) and r["model"].startswith(json.loads(DEFAULT_MODEL.read_text())["name"])
        assert Path(r["saliency"]).is_file()
    assert main(["xray", "predict", str(d / "a.png"), "--json"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["xray"], "a subcommand is needed"),
    (["xray", "bogus"], "invalid choice"),
    (["xray", "predict", "x.png", "--saliency", "ig"], "--saliency needs --out"),
    (["xray", "predict", "x.png", "--model", "missing.json"], "not found"),
    (["xray", "train", "--out", "o"], "--data"),
    (["xray", "train", "--data", "d", "--out", "o", "--widths", "8,x"], "--widths must be"),
])
def test_cli_bad_usage_exits_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("inverse-studio") and message in err[0], err
    assert "Traceback" not in err[0]


def test_cli_empty_folder_is_bad_input(tmp_path, capsys):
    assert main(["xray", "predict", str(tmp_path)]) == 2
    assert "no DICOM/PNG/JPEG files found" in capsys.readouterr().err


def _tiny_training_folder(tmp_path: Path) -> Path:
    """12 films per class, with patient-style names; a bright patch makes the classes separable."""
    data = tmp_path / "data"
    for k, label in enumerate(["NORMAL", "PNEUMONIA"]):
        (data / label).mkdir(parents=True)
        for i in range(12):
            img = _chest_like(48, 10 * k + i)
            if k:
                img[10:30, 8:20] = 0.9
            stem = f"IM-{i:04d}-0001" if k == 0 else f"person{i}_bacteria_{i}"
            Image.fromarray((img * 255).astype(np.uint8)).save(data / label / f"{stem}.png")
    return data


def test_cli_train_smoke(tmp_path, capsys):
    data = _tiny_training_folder(tmp_path)
    out = tmp_path / "model"
    argv = ["xray", "train", "--data", str(data), "--out", str(out), "--epochs", "1", "--size", "32",
            "--widths", "4,8", "--strides", "2", "--stem-stride", "2", "--batch", "8", "--threads", "1",
            "--val-fraction", "0.3"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "24 images: 16 train, 8 validation" and json.loads(lines[2])["epoch"] == 1
    cfg = json.loads((out / "cxr_pneumonia_resnet_small.json").read_text())
    assert cfg["arch"]["widths"] == [4, 8] and cfg["arch"]["strides"] == [2] and cfg["input"]["size"] == 32
    clf = Classifier.load(out / "cxr_pneumonia_resnet_small.json")
    assert 0 <= clf.predict(_chest_like(64))[1] <= 1


def test_cli_train_cv_smoke_writes_an_ensemble_and_its_card(tmp_path, capsys):
    data = _tiny_training_folder(tmp_path)
    out = tmp_path / "model"
    argv = ["xray", "train", "--cv", "2", "--data", str(data), "--out", str(out), "--epochs", "1", "--size", "32",
            "--widths", "4,8", "--strides", "2", "--stem-stride", "2", "--batch", "8", "--threads", "1"]
    assert main(argv) == 0
    cfg = json.loads((out / "cxr_pneumonia_cv_ensemble.json").read_text())
    assert cfg["format"] == "ensemble" and [m["fold"] for m in cfg["members"]] == [0, 1]
    assert sum(m["oof_images"] for m in cfg["members"]) == 24
    card = (out / "cxr_pneumonia_cv_ensemble.md").read_text()
    assert "patient-grouped 2-fold" in card and "0.960" in card
    clf = Classifier.load(out / "cxr_pneumonia_cv_ensemble.json")
    assert 0 <= clf.predict(_chest_like(64))[1] <= 1
    assert main(["xray", "train", "--cv", "1", "--data", str(data), "--out", str(tmp_path / "m2")]) == 2

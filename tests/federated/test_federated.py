"""Federated demo on a generated split: site loaders disjoint, Flower path per-site metrics, FedBN local, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.federated.sites import FederationSpec, assign_patients, load_site
from engine.federated.train import auc, auc_from_histograms, histograms, local_keys, make_model, run_fedavg
from tests.federated.synth import make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("cxr"), per_class=16, size=32)


def test_sites_are_patient_disjoint_and_skewed(folder):
    spec = FederationSpec(str(folder), sites=2, size=32, max_films=None)
    parts = assign_patients(spec)
    seen = [set(p["train"]) | set(p["test"]) for p in parts]
    assert not (seen[0] & seen[1])
    for p in parts:
        assert not set(p["train"]) & set(p["test"])
    y0 = load_site(spec, 0, "train")[1].mean()
    y1 = load_site(spec, 1, "train")[1].mean()
    assert y0 < y1  # label skew: site 1 has more pneumonia
    x0 = load_site(spec, 0, "train")[0]
    assert x0.shape[1:] == (1, 32, 32) and x0.dtype == np.float32


def test_auc_and_histogram_auc_agree():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.clip(0.5 + 0.2 * (y - 0.5) + 0.2 * rng.standard_normal(400), 0, 1)
    a = auc(y, s)
    assert 0.6 < a < 0.95
    assert abs(auc_from_histograms(*histograms(y, s)) - a) < 0.01


def test_fedbn_local_keys_are_the_bn_layers():
    m = make_model("fedbn")
    keys = local_keys(m, "fedbn")
    assert any(k.endswith("running_mean") for k in keys) and any(k.endswith("1.weight") for k in keys)
    assert not any(k.startswith("0.") for k in keys)  # conv weights are shared
    assert all(k.endswith("num_batches_tracked") for k in local_keys(make_model("bn"), "bn"))


def test_flower_fedbn_round_metrics_and_server_never_sees_bn(folder):
    spec = FederationSpec(str(folder), sites=2, size=32, max_films=None)
    rows, record = [], {}
    final = run_fedavg(spec, "fedbn", 2, 1, lambda r, row: rows.append((r, row)), record=record)
    assert [r for r, _ in rows] == [1, 2]
    for _, row in rows:
        assert set(row) == {"auc_site0", "auc_site1", "auc_pooled"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert final == rows[-1][1]
    bn = local_keys(make_model("fedbn"), "fedbn")
    assert record["aggregate_keys"] and not set(record["aggregate_keys"]) & bn
    for keys in record["update_keys"]:
        assert not set(keys) & bn


def test_cli_runs_on_tiny_folder_and_rejects_bad_input(folder, tmp_path, capsys):
    from engine.cli.main import main

    assert main(["federated", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    out = tmp_path / "run"
    rc = main(["federated", "--data", str(folder), "--out", str(out), "--sites", "2", "--rounds", "2",
               "--size", "32", "--norm", "gn", "--max-films", "0"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    labels = [r["label"] for r in summary["table"]]
    assert labels == ["fedavg-gn", "centralised-gn", "local-gn"]
    rounds = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rounds if r.get("kind") == "round"]) == 6

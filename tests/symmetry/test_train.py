"""Training the symmetry pair: the error modulo symmetries, a tiny training run, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.symmetry.data import base_objects, flip, shift, symmetric_copies
from engine.symmetry.train import TrainConfig, error_modulo, key, load, predict, save, train_net, train_table


@pytest.fixture(scope="module")
def objects() -> np.ndarray:
    return base_objects(6, seed=1)


def test_error_is_zero_for_every_copy_the_setting_allows(objects):
    x = objects
    assert np.allclose(error_modulo(x, x, "none"), 0, atol=1e-6)
    assert np.allclose(error_modulo(flip(x), x, "flip"), 0, atol=1e-6)
    assert np.allclose(error_modulo(shift(x, 4, -3), x, "shift"), 0, atol=1e-6)
    assert np.allclose(error_modulo(shift(flip(x), -2, 5), x, "shift+flip"), 0, atol=1e-6)
    # ... and not for copies the setting does not allow (objects that are their own flip aside)
    asym = np.linalg.norm(x - flip(x), axis=(1, 2)) > 0.2 * np.linalg.norm(x, axis=(1, 2))
    assert asym.sum() >= 3
    assert (error_modulo(flip(x), x, "none")[asym] > 0.1).all()
    assert (error_modulo(shift(x, 4, -3), x, "flip") > 0.1).all()
    e = error_modulo(flip(x), x, "shift")[asym]
    assert (e > 0.01).all() and e.mean() > 0.2
    # predicting zeros is error 1 by construction
    assert np.allclose(error_modulo(np.zeros_like(x), x, "shift+flip"), 1.0)


def test_the_mean_of_symmetric_copies_is_no_solution(objects):
    x = objects[0]
    mean = symmetric_copies(x, "flip").mean(axis=0)
    assert float(error_modulo(mean, x, "flip")) > 0.1


def test_error_checks_shapes(objects):
    with pytest.raises(InputError, match="shape"):
        error_modulo(objects[:2], objects[:3], "none")
    with pytest.raises(InputError, match="unknown symmetry setting"):
        error_modulo(objects, objects, "rotate")


def test_training_lowers_the_loss_and_the_table_has_both_networks(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(n_train=48, n_test=16, epochs=3, batch=16, width=4, bottleneck=16)
    seen = []
    doc, nets = train_table(config=cfg, settings=("none", "flip"), callback=seen.append)
    assert set(nets) == {key("none", False), key("none", True), key("flip", False), key("flip", True)}
    first = [e for e in seen if e["network"] == "flip/plain"]
    assert [e["epoch"] for e in first] == [1, 2, 3] and first[-1]["loss"] < first[0]["loss"]
    for r in doc["rows"].values():
        assert np.isfinite(r["test_error_mean"]) and r["test_error_mean"] > 0 and r["train_seconds"] >= 0
    # with no symmetric copies the restriction changes no target: the two networks are identical
    assert doc["rows"]["none/plain"]["test_error_mean"] == doc["rows"]["none/restricted"]["test_error_mean"]
    save(tmp_path, doc, nets)
    doc2, nets2 = load(tmp_path)
    assert doc2["rows"] == doc["rows"]
    x = np.random.default_rng(0).random((2, 32, 32), dtype=np.float32)
    assert np.allclose(predict(nets2["flip/plain"], x), predict(nets["flip/plain"], x), atol=1e-6)


def test_missing_weights_are_a_plain_error(tmp_path):
    with pytest.raises(InputError, match="no trained symmetry networks"):
        load(tmp_path)


def test_bad_config_is_refused():
    with pytest.raises(InputError, match="epochs"):
        TrainConfig(epochs=0)


def test_train_net_fits_a_tiny_set():
    torch.set_num_threads(1)
    cfg = TrainConfig(n_train=8, n_test=8, epochs=30, batch=8, width=4, bottleneck=16, lr=5e-3)
    x = np.random.default_rng(1).random((8, 32, 32), dtype=np.float32)
    y = base_objects(8, seed=2)
    losses = []
    train_net(x, y, config=cfg, callback=lambda e: losses.append(e["loss"]))
    assert losses[-1] < 0.5 * losses[0]

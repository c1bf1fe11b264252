"""Shared test set-up: runs go to a temporary folder; data from ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("INVERSE_STUDIO_RUNS", str(d))
    return d


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"development data not found at {p} (present in CI and for developers only)")
    return p


os.environ.setdefault("OMP_NUM_THREADS", "2")
# every test has its own runs folder, so its own job manager: their idle worker processes end soon
os.environ.setdefault("INVERSE_STUDIO_WORKER_IDLE_S", "3")


@pytest.fixture(autouse=True)
def _one_thread():
    """Engine tests use tiny tensors: extra torch threads only add synchronisation cost on a busy machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

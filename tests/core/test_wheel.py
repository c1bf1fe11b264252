"""The wheel carries the app's Streamlit config and the default X-ray model, and finds both once installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "cxr_pneumonia_cv_ensemble"
DEFAULT_MODEL_FILES = [f"{DEFAULT}.json", f"{DEFAULT}.sha256", f"{DEFAULT}.md",
                       *(f"{DEFAULT}_fold{k}.pt" for k in range(3))]
# other models trained into assets/models (v1.0 is one) and the training tables must stay out of the wheel
DECOY = "cxr_pneumonia_other_fold0.pt"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    # a copy of the sources, so no build/ folder left in the checkout can add stale files
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("engine", "ui", ".streamlit", "assets/models"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    (src / "assets" / "models" / DECOY).write_bytes(b"not a default model")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "-q", "-w", str(out)], check=True, cwd=src, timeout=50)
    (whl,) = out.glob("inverse_studio-*.whl")
    return whl


def test_the_wheel_holds_the_config_and_only_the_default_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert ".streamlit/config.toml" in names
    for name in DEFAULT_MODEL_FILES:
        assert f"assets/models/{name}" in names, name
    models = {n for n in names if n.startswith("assets/")}
    assert {Path(n).name for n in models} == set(DEFAULT_MODEL_FILES), models
    assert not any("resnet_small" in n or DECOY in n or "_oof" in n for n in names)
    assert "ui/serve.py" in names and "ui/app.py" in names


def test_the_installed_files_are_found_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel's purelib files land in site-packages as they are
    code = (
        "import json, engine\n"
        "from engine.cli.app import app_file, packaged_options\n"
        "from engine.xray.predict import MODELS_DIR, Classifier\n"
        "clf = Classifier.load('default')\n"
        "opts = packaged_options(app_file())\n"
        "print(json.dumps({'engine': engine.__file__, 'app': str(app_file()), 'models': str(MODELS_DIR),\n"
        "                  'model': clf.name, 'errors': opts['client.showErrorDetails'],\n"
        "                  'stats': opts['browser.gatherUsageStats'], 'uploads': opts.get('server.maxUploadSize')}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=50)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("engine", "app", "models"):
        assert Path(got[key]).resolve().is_relative_to(site.resolve()), (key, got[key])
    assert got["model"].startswith(DEFAULT)
    # the values come from the packaged file (maxUploadSize is not among the built-in safe values)
    assert got["errors"] == "none" and got["stats"] is False and got["uploads"] == 200

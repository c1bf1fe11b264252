"""The engine's shape: the public API, one package per domain, and no UI code in the engine."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(engine.__file__).resolve().parent


def test_every_public_name_resolves():
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    from engine import CDISolver, DIPSolver  # the README's first line

    assert DIPSolver.__name__ == "DIPSolver" and CDISolver.__name__ == "CDISolver"


def test_engine_root_holds_packages_only():
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert modules == ["__init__.py"]
    expected = {"core", "runs", "jobs", "dip", "cdi", "gpr", "xray", "mri", "symmetry", "federated", "batch", "cli"}
    assert {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} == expected


def test_importing_the_whole_engine_never_imports_streamlit_or_ui():
    code = (
        "import importlib, json, pkgutil, sys, engine\n"
        "names = [m.name for m in pkgutil.walk_packages(engine.__path__, 'engine.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "from engine.cli.app import app_file; app_file()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'ui'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT.parent)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_no_engine_source_mentions_streamlit_or_ui_imports():
    for path in ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import streamlit" not in text and "from ui" not in text and "import ui" not in text, path


def test_every_job_kind_resolves_to_a_function():
    from engine.jobs.registry import WORKFLOWS, get_workflow

    for kind in WORKFLOWS:
        assert callable(get_workflow(kind)), kind


def test_all_modules_import():
    for m in pkgutil.walk_packages(engine.__path__, "engine."):
        importlib.import_module(m.name)

"""``inverse-studio app``: start the Streamlit app."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from engine.cli.common import add_subparser, say


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "app", help="start the Streamlit app")
    p.add_argument("--runs-dir", help="where runs are stored (default: $INVERSE_STUDIO_RUNS or "
                                      "~/.local/share/inverse-studio/runs)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=run)


def app_file() -> Path:
    """The app's entry script, ``app.py`` of the installed ``ui`` package.

    Found through the import system's spec of ``ui`` without importing it: the engine never runs UI code.
    """
    from engine.core.errors import InputError

    spec = importlib.util.find_spec("ui")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / "app.py"
        if path.is_file():
            return path
    raise InputError("the app's files (the ui package) are not installed; reinstall inverse-studio")


def run(args: argparse.Namespace) -> int:
    app = app_file()
    env = dict(os.environ)
    if args.runs_dir:
        env["INVERSE_STUDIO_RUNS"] = str(Path(args.runs_dir).expanduser().resolve())
    # the project's .streamlit/config.toml is read from the working directory
    cwd = app.parent.parent
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.address", args.address]
    say(f"Inverse Studio: http://{args.address}:{args.port}")
    os.chdir(cwd)
    os.execve(sys.executable, cmd, env)
    return 0  # pragma: no cover

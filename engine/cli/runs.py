"""``inverse-studio runs``: list the runs in the run store."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import add_subparser
from engine.core.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "runs", help="list the stored runs")
    p.add_argument("--runs-dir", help="the run store to list (default: $INVERSE_STUDIO_RUNS or the user's data folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per run (id, kind, state, iteration); listing never creates the store's folder."""
    from engine.runs import RunStore
    from engine.runs.store import default_runs_root

    if args.runs_dir is not None and not args.runs_dir.strip():
        raise InputError("--runs-dir is empty; expected the folder of a run store")
    root = Path(args.runs_dir).expanduser() if args.runs_dir else default_runs_root()
    if not root.exists():
        if args.runs_dir:
            raise InputError(f"--runs-dir {args.runs_dir!r} does not exist; expected the folder of a run store")
        return 0  # no run yet
    if not root.is_dir():
        raise InputError(f"--runs-dir {str(root)!r} is a file; expected the folder of a run store")
    try:
        runs = RunStore(root).list()
    except PermissionError:
        raise InputError(f"cannot read the runs folder {root} (permission denied)") from None
    for r in runs:
        st = r.status()
        print(f"{r.id}\t{r.kind}\t{st.get('state')}\t{st.get('iteration', 0)}")
    return 0

"""``inverse-studio runs``: list the runs in the run store."""

from __future__ import annotations

import argparse

from engine.cli.common import add_subparser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "runs", help="list the stored runs")
    p.add_argument("--runs-dir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.runs import RunStore

    store = RunStore(args.runs_dir)
    for r in store.list():
        st = r.status()
        print(f"{r.id}\t{r.kind}\t{st.get('state')}\t{st.get('iteration', 0)}")
    return 0

"""What every subcommand shares: the parser class, the device flag, output-folder checks.

Contract for a subcommand module ``engine.cli.<name>``: a function ``register(subparsers)`` that adds
its parser(s) with :func:`add_subparser` and ``set_defaults(func=...)``; ``func(args) -> int`` does the
work. It raises :class:`~engine.core.errors.InputError` for anything the user can fix and lets every
other exception through: :func:`engine.cli.main.main` turns them into the exit status and one line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from engine.core.errors import InputError

PROG = "inverse-studio"


class UsageError(InputError):
    """A command line argparse could not parse (exit 2, one line, like every bad input)."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # argparse hook
        raise UsageError(f"{message} (see {self.prog} --help)", self.prog)


def add_subparser(subparsers: argparse._SubParsersAction, name: str, *, help: str,
                  description: str | None = None) -> Parser:
    """A subcommand parser of class :class:`Parser`."""
    return subparsers.add_parser(name, help=help, description=description or help)


def add_device_argument(parser: argparse.ArgumentParser, *, default: str = "auto") -> None:
    """The one ``--device`` flag: auto (CUDA when present, else CPU), cpu, cuda or cuda:N."""
    parser.add_argument("--device", default=default, metavar="auto|cpu|cuda[:N]",
                        help=f"where to compute (default {default}: CUDA when present, else the CPU; "
                             "asking for cuda without one is an error)")


def resolve_device(args: argparse.Namespace) -> str:
    """The device the command runs on, checked (:func:`engine.core.device.pick_device`)."""
    from engine.core.device import pick_device

    return pick_device(getattr(args, "device", None))


def say(message: str) -> None:
    """A progress or result line for the user, on stderr (stdout is kept for JSON output)."""
    print(message, file=sys.stderr)


def write_metrics_csv(rows: list[dict], path) -> None:  # noqa: ANN001
    """A run's metrics rows as CSV (the usual DIP columns first, any others after), replaced atomically.

    The temporary file is made with ``mkstemp`` in the same folder, so a planted ``*.tmp`` link is never
    followed.
    """
    import csv
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    cols = ["iteration", "loss", "psnr", "ssim", "es_variance"]
    extra = sorted({k for r in rows for k in r} - set(cols) - {"t"})
    fd, tmp = tempfile.mkstemp(prefix=".metrics-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols + extra)
            for r in rows:
                w.writerow(["" if r.get(c) is None else r.get(c) for c in cols + extra])
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_headless(run, *, device: str, what: str, quiet: bool, total: int | None,  # noqa: ANN001
                 report: tuple[str, ...]) -> dict:
    """Run a prepared run folder in this process with a progress bar; write metrics.csv and summary.json.

    Prints the summary's warnings (``warning: ...``) and the ``report`` keys as one JSON line on stderr.
    A run that does not end "done" (a failure, Ctrl-C) raises :class:`InputError` naming ``what``.
    """
    import json
    import time

    from engine.jobs import run_inline

    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=total or None, unit="it", file=sys.stderr, dynamic_ncols=True)

    def on_publish(it: int, row: dict, extra: dict) -> None:
        if bar is None or it <= 0:
            return
        if extra.get("max_iters") and bar.total != extra["max_iters"]:
            bar.total = extra["max_iters"]
        bar.n = it
        post = {k: f"{row[k]:.4g}" for k in ("loss", "psnr") if isinstance(row.get(k), float)}
        if extra.get("es_iteration") is not None:
            post["t*"] = extra["es_iteration"]
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    t0 = time.time()
    try:
        state, summary = run_inline(run, device=device, on_publish=on_publish)
    except KeyboardInterrupt:
        state, summary = "cancelled", {}
    if bar is not None:
        bar.close()
    write_metrics_csv(run.metrics(), run.path / "metrics.csv")
    if state != "done":
        msg = run.status().get("message") or state
        raise InputError(f"{what} {state}: {msg}")
    summary.setdefault("wall_seconds", round(time.time() - t0, 3))
    run.write_json("summary.json", summary)
    for w in summary.get("warnings") or []:  # e.g. the budget ran out before the detector fired
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({k: summary.get(k) for k in report}), file=sys.stderr)
    return summary

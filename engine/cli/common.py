"""What every subcommand shares: the parser class, the device flag, output-folder checks.

Contract for a subcommand module ``engine.cli.<name>``: a function ``register(subparsers)`` that adds
its parser(s) with :func:`add_subparser` and ``set_defaults(func=...)``; ``func(args) -> int`` does the
work. It raises :class:`~engine.core.errors.InputError` for anything the user can fix and lets every
other exception through: :func:`engine.cli.main.main` turns them into the exit status and one line.
"""

from __future__ import annotations

import argparse
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

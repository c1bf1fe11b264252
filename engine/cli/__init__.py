"""The ``inverse-studio`` command line: one parser, one error policy (see :mod:`engine.cli.main`)."""

from engine.cli.main import main

__all__ = ["main"]

"""The ``inverse-studio`` command: the app, and the same jobs headless.

Subcommands
-----------
app        start the Streamlit app
restore    Deep Image Prior restoration of one image
runs       list the runs in the run store
pr         Fourier phase retrieval of a diffraction pattern (CDI)
gpr-sweep  phase-transition sweep of generalized phase retrieval
xray       chest X-ray prediction, robustness and the classifier's training
batch      many inputs as Ray tasks (restore, pr, xray)
federated  the federated-learning demo on chest X-rays (Flower)

One error policy for all of them: bad input (an :class:`~engine.core.errors.InputError`, including a
command line that does not parse) exits with status 2 and one line on stderr; a bug or a resource
problem exits with status 1 and one line that names a log file holding the traceback (a full disk: one
line that says so, as there is no room for a log); Ctrl-C exits 130, and a run it stops keeps its
checkpoint and says "cancelled" in its status.json.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from engine.cli.common import DISK_FULL, PROG, Failure, Parser, UsageError
from engine.core.errors import InputError

#: subcommand modules, in the order ``--help`` lists them; each has ``register(subparsers)``
MODULES = ("app", "restore", "runs", "pr", "gpr", "xray", "batch", "federated")


def build_parser() -> Parser:
    """The one parser, with every subcommand."""
    parser = Parser(prog=PROG, description="Inverse Studio: Deep Image Prior restoration, phase retrieval "
                                           "and chest X-ray review.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in MODULES:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def log_dir() -> Path:
    """Where tracebacks of failed commands go: ``$INVERSE_STUDIO_LOGS`` or the XDG state folder."""
    if os.environ.get("INVERSE_STUDIO_LOGS"):
        return Path(os.environ["INVERSE_STUDIO_LOGS"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "inverse-studio" / "logs"


def _write_log(argv: list[str]) -> Path | None:
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(f"{PROG} {' '.join(argv)}\n\n{traceback.format_exc()}", encoding="utf-8")
        return path
    except OSError:
        return None


def _fail(message: str, status: int, prog: str = PROG) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``inverse-studio`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # the subcommand's name goes into every message, as "inverse-studio pr: error: ..."
    commands = next((a.choices for a in parser._actions if a.dest == "command"), {})  # noqa: SLF001
    prog = f"{PROG} {argv[0]}" if argv and argv[0] in commands else PROG
    try:
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            if args.command is None:
                parser.print_help()
                return 2
            raise UsageError(f"a subcommand is needed (see {prog} --help)", prog)
        return int(args.func(args) or 0)
    except SystemExit as e:  # --help and --version print and exit 0
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 2
    except UsageError as e:  # extra arguments are found by the top parser: still name the subcommand
        return _fail(str(e), 2, prog if e.prog == PROG else e.prog)
    except InputError as e:
        return _fail(str(e), 2, prog)
    except KeyboardInterrupt as e:  # engine.cli.common.Interrupted says what the run kept
        return _fail(str(e) or "interrupted", 130, prog)
    except MemoryError:
        return _fail("out of memory; try a smaller input or fewer starts", 1, prog)
    except Failure as e:  # a full disk, a run that failed: the line says where the details are
        return _fail(str(e), 1, prog)
    except Exception as e:  # noqa: BLE001 - a bug: one line for the user, the traceback in a log file
        if isinstance(e, OSError) and e.errno in DISK_FULL:  # there is no room for a log file either
            where = f" while writing {e.filename}" if e.filename else ""
            return _fail(f"the disk is full{where}; free some space and run it again", 1, prog)
        if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:
            name = f": {str(e.filename)[:60]}..." if e.filename else ""
            return _fail(f"a file name is too long for this file system{name}", 2, prog)
        log = _write_log(argv)
        where = f"; the traceback is in {log}" if log else ""
        return _fail(f"unexpected {type(e).__name__}{where}. Please report it.", 1, prog)


if __name__ == "__main__":
    sys.exit(main())

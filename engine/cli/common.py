"""What every subcommand shares: the parser class, the device flag, output-folder checks.

Contract for a subcommand module ``engine.cli.<name>``: a function ``register(subparsers)`` that adds
its parser(s) with :func:`add_subparser` and ``set_defaults(func=...)``; ``func(args) -> int`` does the
work. It raises :class:`~engine.core.errors.InputError` for anything the user can fix (exit 2),
:class:`Failure` (e.g. :class:`DiskFull`) for a resource problem it can say in one line (exit 1),
:class:`Interrupted` on Ctrl-C (exit 130), and lets every other exception through:
:func:`engine.cli.main.main` turns them into the exit status and one line.

``--out`` is checked by :func:`check_out_folder` (or :func:`check_out_file`) before anything is read or
computed, and a run folder is made by :func:`start_run` and run by :func:`run_headless`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.core.errors import InputError

PROG = "inverse-studio"

#: errno values that mean "no room left" (a full disk, or the user's quota)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

#: files a run folder (or a ``pr`` output folder) holds once something ran in it
RUN_FILES = ("summary.json", "spec.json", "status.json", "metrics.jsonl", "metrics.csv", "result.png",
             "checkpoint.pt", "object.npz")


class Failure(Exception):
    """A command that could not finish for a reason other than its input (exit 1, this one line, no log)."""


class DiskFull(Failure):
    """The disk (or the quota) filled up while the command wrote its output."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a line that says what was kept (exit 130)."""


class UsageError(InputError):
    """A command line argparse could not parse (exit 2, one line, like every bad input)."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # argparse hook
        raise UsageError(f"{message} (see {self.prog} --help)", self.prog)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (iterations, starts, trials, sizes)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: a whole number of at least 0 (seeds, indices, optional counts)."""
    return _int_at_least(text, 0)


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number of at least 0 (weights, noise levels)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of at least 0, got {text!r}")
    return v


def _int_at_least(text: str, low: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {v}")
    return v


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


def _why(e: OSError) -> str:
    # the reason of a failed write, as a plain phrase
    if e.errno in DISK_FULL:
        return "the disk is full"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    return (e.strerror or str(e)).lower()


def _nearest_folder(path: Path) -> Path:
    # the deepest existing ancestor of ``path`` (where the first new folder would be made)
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(os.sep)


def _check_name_lengths(path: Path, flag: str) -> None:
    base = _nearest_folder(path)
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
        path_max = os.pathconf(base, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    long = next((part for part in path.parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise InputError(f"{flag}: the name {long[:24]}... is {len(os.fsencode(long))} bytes long; "
                         f"this file system allows at most {name_max}")
    if len(os.fsencode(str(path))) >= path_max:
        raise InputError(f"{flag}: the path is longer than this file system allows ({path_max - 1} bytes)")


def _check_writable(folder: Path, flag: str, value: str) -> None:
    # a real write (a temporary folder, removed at once): permission bits do not tell for root, /proc or
    # a read-only mount
    if not folder.is_dir():
        raise InputError(f"{flag} {value!r}: {folder} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=folder))
    except OSError as e:
        why = "new files cannot be made there" if e.errno == errno.ENOENT else _why(e)
        raise InputError(f"{flag} {value!r}: cannot write in {folder} ({why}); "
                         "choose a folder you can write to") from None


def check_out_folder(value: str, *, flag: str = "--out") -> Path:
    """The output folder named by ``value``, checked before anything is computed or written.

    Refused with :class:`InputError`: an empty name (it would mean the current folder), a name or path
    too long for the file system, an existing file, a folder holding a run already (see
    :func:`refuse_existing_run`), and a place that cannot be written (a read-only or virtual file
    system such as ``/proc``, no permission). Nothing is created.
    """
    if not value or not value.strip():
        raise InputError(f"{flag} is empty; expected the name of a new or empty folder")
    if "\0" in value:
        raise InputError(f"{flag} contains a NUL character; expected a folder name")
    path = Path(value).expanduser()
    _check_name_lengths(path.absolute(), flag)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as e:
        raise InputError(f"{flag} {value!r}: cannot be used ({_why(e)})") from None
    if exists and not is_dir:
        raise InputError(f"{flag} {value!r} is an existing file; expected a new or empty folder")
    if is_dir:
        refuse_existing_run(path, flag=flag)
        _check_writable(path, flag, value)
    else:
        _check_writable(_nearest_folder(path.absolute()), flag, value)
    return path


def check_out_file(value: str, *, flag: str = "--out", suffix: str = ".json") -> Path:
    """The output file named by ``value`` (its folder must exist and be writable); nothing is created."""
    if not value or not value.strip():
        raise InputError(f"{flag} is empty; expected a file name such as sweep{suffix}")
    if "\0" in value:
        raise InputError(f"{flag} contains a NUL character; expected a file name")
    path = Path(value).expanduser()
    _check_name_lengths(path.absolute(), flag)
    if path.is_dir() or value.endswith(os.sep):
        raise InputError(f"{flag} {value!r} is a folder; expected a file name such as {path / ('sweep' + suffix)}")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{flag} {value!r}: the folder {parent} does not exist; create it first")
    if path.exists() and not path.is_file():
        raise InputError(f"{flag} {value!r} exists and is not a regular file")
    _check_writable(parent, flag, value)
    return path


def refuse_existing_run(path: Path, *, flag: str = "--out") -> None:
    """:class:`InputError` when the folder ``path`` already holds a run, so earlier results are never replaced."""
    held = next((name for name in RUN_FILES if (path / name).exists()), None)
    if held is None and (path / "arrays").is_dir():
        held = "arrays"
    if held is not None:
        raise InputError(f"{flag} {str(path)!r} already holds a run (it has {held}); "
                         "pass a new folder, or delete that one first")


def make_out_folder(path: Path, *, flag: str = "--out") -> None:
    """Create the checked output folder (and its parents); a failure is one plain line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise DiskFull(f"the disk is full: cannot create {path}; free some space and run it again") from None
        raise InputError(f"{flag} {str(path)!r}: cannot create the folder ({_why(e)})") from None


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


def start_run(out: Path, spec: dict, arrays: dict, *, flag: str = "--out"):  # noqa: ANN201 - a Run
    """Create the run folder at the checked ``out``: ``spec.json``, a queued status and the input arrays."""
    import numpy as np

    from engine.runs import Run, RunStore

    make_out_folder(out, flag=flag)
    refuse_existing_run(out, flag=flag)  # again: another command may have started in it since the check
    try:
        run = RunStore.create_at(out, spec)
        for k, v in arrays.items():
            run.save_array(k, np.asarray(v))
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        with contextlib.suppress(Exception):  # no status.json yet: nothing to mark
            Run(out).set_status(state="failed", message="the disk is full: the inputs could not be saved")
        raise DiskFull(f"the disk is full: cannot save the inputs in {out}; free some space and run it again "
                       "in a new folder") from None
    return run


@contextlib.contextmanager
def _ctrl_c_stops(event, *, note) -> Iterator[None]:  # noqa: ANN001
    """While inside: the first Ctrl-C sets ``event`` (the run stops at its next step, keeping a checkpoint);
    a second one raises :class:`KeyboardInterrupt` at once. Only the main thread can take signals."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame) -> None:  # noqa: ANN001
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        note("stopping after this step (Ctrl-C again to quit at once)")

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _errno_of(message: str) -> int | None:
    # the run's status keeps "OSError: [Errno 28] No space left on device", not the exception
    m = re.search(r"\[Errno (\d+)\]", message or "")
    return int(m.group(1)) if m else None


def _record_failure(run, message: str, trace: str | None = None) -> None:  # noqa: ANN001
    """Mark ``run`` failed with ``message`` (and keep ``trace`` in error.txt), as far as the disk allows."""
    import time

    if trace is not None and not (run.path / "error.txt").is_file():
        with contextlib.suppress(OSError):
            (run.path / "error.txt").write_text(trace, encoding="utf-8")
    with contextlib.suppress(Exception):  # set_status rewrites in place on a full disk; beyond that, nothing
        run.set_status(state="failed", finished=time.time(), message=message)


def run_headless(run, *, device: str, what: str, quiet: bool, total: int | None,  # noqa: ANN001
                 report: tuple[str, ...]) -> dict:
    """Run a prepared run folder in this process with a progress bar; write metrics.csv and summary.json.

    Prints the summary's warnings (``warning: ...``) and the ``report`` keys as one JSON line on stderr.
    Ctrl-C stops the run at its next step: status.json says "cancelled", the checkpoint and metrics
    are kept, and :class:`Interrupted` is raised (exit 130). A full disk marks the run "failed" and raises
    :class:`DiskFull`; another unexpected error marks it "failed" (traceback in error.txt) and raises
    :class:`Failure` (or lets the exception through when it happened outside the workflow). A run
    that failed on its input raises :class:`InputError` naming ``what``.
    """
    import json
    import threading
    import time
    import traceback

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

    def note(message: str) -> None:
        if bar is not None:
            bar.write(message, file=sys.stderr)
        elif not quiet:
            say(message)

    def csv_quietly() -> None:
        with contextlib.suppress(OSError):  # the run has already ended badly; its metrics.jsonl stays
            write_metrics_csv(run.metrics(), run.path / "metrics.csv")

    stop = threading.Event()
    t0 = time.time()
    try:
        with _ctrl_c_stops(stop, note=note):
            state, summary = run_inline(run, device=device, on_publish=on_publish, cancel_event=stop)
    except KeyboardInterrupt:  # a second Ctrl-C: no clean stop, so no fresh checkpoint
        if bar is not None:
            bar.close()
        with contextlib.suppress(Exception):
            run.set_status(state="interrupted", finished=time.time(),
                           message="stopped by a second Ctrl-C before the run could save its state")
        csv_quietly()
        raise Interrupted(f"interrupted; {run.path} keeps what was saved before the second Ctrl-C") from None
    except Exception as e:  # the run's own bookkeeping failed (the workflow's errors are caught inside)
        if bar is not None:
            bar.close()
        disk = isinstance(e, OSError) and e.errno in DISK_FULL
        _record_failure(run, "the disk is full" if disk else f"{type(e).__name__}: {e}", traceback.format_exc())
        if disk:
            raise DiskFull(f"the disk is full: {what} stopped; free some space and run it again in a new "
                           "folder") from None
        raise
    if bar is not None:
        bar.close()
    status = run.status()
    it = status.get("iteration") or 0
    error_txt = run.path / "error.txt"
    if state == "failed":
        csv_quietly()
        msg = status.get("message") or state
        if _errno_of(msg) in DISK_FULL:
            _record_failure(run, f"the disk is full (stopped at iteration {it})")
            raise DiskFull(f"the disk is full: {what} stopped at iteration {it}; free some space and run it "
                           f"again in a new folder (details in {error_txt})")
        if error_txt.is_file():  # a bug or a resource problem, not the input: the type only, like main()
            raise Failure(f"{what} failed: unexpected {msg.split(':', 1)[0]}; the traceback is in {error_txt}. "
                          "Please report it.")
        raise InputError(f"{what} failed: {msg}")
    if state == "cancelled":
        csv_quietly()
        if not stop.is_set():
            raise InputError(f"{what} cancelled: {status.get('message') or 'stopped'}")
        saved = (run.path / "checkpoint.pt").is_file()
        with contextlib.suppress(Exception):
            run.set_status(message=f"stopped by Ctrl-C at iteration {it}"
                                   + ("; it can be resumed from its checkpoint" if saved else ""))
        kept = "" if not it else f"; {run.path} keeps the result so far" + (
            " and its checkpoint" if saved else "")
        raise Interrupted(f"interrupted at iteration {it}{kept}")
    try:
        write_metrics_csv(run.metrics(), run.path / "metrics.csv")
        summary.setdefault("wall_seconds", round(time.time() - t0, 3))
        run.write_json("summary.json", summary)
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        _record_failure(run, "the disk is full: the results could not be written",
                        traceback.format_exc())
        raise DiskFull(f"the disk is full: {what} finished but its results could not be written in "
                       f"{run.path}; free some space and run it again in a new folder") from None
    for w in summary.get("warnings") or []:  # e.g. the budget ran out before the detector fired
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({k: summary.get(k) for k in report}), file=sys.stderr)
    return summary

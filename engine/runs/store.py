"""One folder per run, written so that a crash or a browser refresh loses nothing.

Layout of a run folder::

    spec.json        what was asked (kind + params), written once
    status.json      state, iteration, message; replaced atomically on every change
    metrics.jsonl    one JSON object per logged step, appended
    arrays/*.npy     inputs and results (no pickle)
    snapshots/*.png  downsampled iterates, named by iteration
    checkpoint.pt    tensors only, loaded with ``weights_only=True``, with the iteration it stands for
    summary.json     the final numbers
    error.txt        the traceback of a failed run
    name.json        the name the user gave the run (absent: a name made from kind, input and date)
    .lock            ``flock``ed while a process runs (or has queued) the run

No file is opened through a link: writes go to a fresh ``mkstemp`` file renamed into place (or are
appended with ``O_NOFOLLOW``), reads skip links, and :class:`RunStore` skips linked run folders.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError

ENV_VAR = "INVERSE_STUDIO_RUNS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$")
TERMINAL = ("done", "failed", "cancelled")
_CKPT_META = "_run"  # key of the run's own bookkeeping inside checkpoint.pt


def default_runs_root() -> Path:
    """Where runs live: ``$INVERSE_STUDIO_RUNS``, else the per-user data folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "inverse-studio" / "runs"


LOCK_NAME = ".lock"  # flock()ed by the process that runs (or has queued) the run
NAME_FILE = "name.json"
MAX_RUN_NAME = 80
#: how a kind is called in a run's default name
KIND_LABELS = {"restore": "Restoration", "mri": "MRI", "cdi": "CDI", "gpr": "GPR", "gpr_sweep": "GPR sweep",
               "xray": "X-ray", "federated": "Federated"}


def check_run_name(text: object) -> str:
    """``text`` stripped, when it can name a run: 1-80 printable characters on one line, no path separator.

    A name is a label kept in ``name.json``; it never becomes a file or folder name.
    """
    if not isinstance(text, str):
        raise InputError(f"a run name must be text; got {type(text).__name__}")
    name = text.strip()
    if not 1 <= len(name) <= MAX_RUN_NAME:
        raise InputError(f"a run name must have 1 to {MAX_RUN_NAME} characters; got {len(name)}")
    if not name.isprintable():
        raise InputError("a run name must be printable characters on one line (no tabs, line breaks or control "
                         "characters)")
    if "/" in name or "\\" in name:
        raise InputError("a run name cannot contain / or \\: it is a label, not a path")
    return name


def _one_line(text: str, limit: int) -> str:
    # labels come from file names the user uploaded: keep them printable and short
    clean = "".join(c if c.isprintable() else " " for c in str(text)).strip()
    return clean if len(clean) <= limit else clean[:limit - 1].rstrip() + "…"


@contextmanager
def _atomic_file(target: Path, mode: str = "wb") -> Iterator[Any]:
    """Yield a file object on a fresh temporary file next to ``target``; rename it over ``target`` on success.

    The file is made by ``mkstemp`` (``O_CREAT | O_EXCL``, a random name) and written through the
    descriptor it returns, never reopened by name, so a planted link is never followed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            f = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` so readers see the old or the new file, never half of one."""
    with _atomic_file(target, "w") as f:
        f.write(text)


def _open_nofollow(p: Path) -> Any | None:
    """``p`` opened for reading as UTF-8 text, or None when it is missing or is a link (never followed)."""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    return os.fdopen(fd, encoding="utf-8")


def _overwrite_in_place(target: Path, text: str) -> None:
    # last resort on a full disk: rewriting the blocks a small file already has needs no new space
    fd = os.open(target, os.O_WRONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


class RunLock:
    """An exclusive ``flock`` on a run's lock file; :meth:`release` (or process death) frees it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _check_name(name: str) -> str:
    # names come from code, but a bad one must never escape the run folder
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"invalid file name {name!r} inside a run folder")
    return name


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (or uint8) to uint8, with NaN mapped to 0."""
    if img.dtype == np.uint8:
        return img
    return (np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class Run:
    """A run folder. See the module docstring for the layout."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.id = self.path.name
        self._spec: dict | None = None
        self._last_logged: int | None = None

    # --- spec / status -------------------------------------------------
    @property
    def spec(self) -> dict:
        if self._spec is None:
            self._spec = self.read_json("spec.json") or {}
        return self._spec

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind", "?"))

    def status(self) -> dict:
        return self.read_json("status.json") or {"state": "unknown"}

    def set_status(self, **fields: Any) -> None:
        """Merge ``fields`` into status.json (atomic; rewritten in place when the disk is full)."""
        st = self.status()
        st.update(fields)
        st["updated"] = time.time()
        text = json.dumps(st, indent=1, default=_json_default)
        try:
            atomic_write_text(self.path / "status.json", text)
        except OSError as e:
            # a full disk must not leave the run "running" for good: the old file's blocks still hold it
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not (self.path / "status.json").is_file():
                raise
            _overwrite_in_place(self.path / "status.json", text)

    # --- lock ------------------------------------------------------------
    def try_lock(self) -> RunLock | None:
        """Take the run's lock without waiting; None when another process (or manager) holds it.

        The lock is an ``flock`` on an open descriptor: it goes away with the process that holds it,
        so a killed server never leaves a run locked. On a file system without ``flock`` the lock
        is given but guards nothing.
        """
        import fcntl

        p = self.path / LOCK_NAME
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(p, flags, 0o600)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            p.unlink()  # a link planted under the lock's name: remove the link itself, never its target
            fd = os.open(p, flags | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                return None
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
        return RunLock(fd)

    def is_locked(self) -> bool:
        """True while some process holds the run's lock (it is running, or queued by a live server)."""
        lock = self.try_lock()
        if lock is None:
            return True
        lock.release()
        return False

    # --- name ------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name the user gave the run (:meth:`rename`), else :meth:`default_name`."""
        stored = self.read_json(NAME_FILE)
        if isinstance(stored, dict):
            try:
                return check_run_name(stored.get("name"))
            except InputError:  # edited by hand into something no rename accepts
                pass
        return self.default_name()

    def rename(self, text: str) -> str:
        """Give the run the name ``text`` (stripped; see :func:`check_run_name`) and return it.

        Only ``name.json`` changes: the folder and its id stay, so links to the run keep working.
        """
        name = check_run_name(text)
        self.write_json(NAME_FILE, {"name": name, "renamed": time.time()})
        return name

    def default_name(self) -> str:
        """A name made from the kind, the input and the date, e.g. ``Restoration · camera · 2026-01-01 12:00``."""
        parts = [KIND_LABELS.get(self.kind, self.kind)]
        label = self.input_label()
        if label:
            parts.append(_one_line(label, 40))
        created = self.created()
        if created is not None:
            parts.append(time.strftime("%Y-%m-%d %H:%M", time.localtime(created)))
        return " · ".join(parts).replace("/", "-").replace("\\", "-")

    def input_label(self) -> str:
        """What the run was given, in a few words: the sample or file name, the signal, the batch size; or ""."""
        p = self.spec.get("params") or {}
        if not isinstance(p, dict):
            return ""
        kind = self.kind
        if kind == "xray":
            n = len(p.get("images") or [])
            return f"{n} image{'' if n == 1 else 's'}"
        if kind == "gpr_sweep":
            return f"{p.get('model') or 'complex-gaussian'}, n={p.get('n', 64)}"
        if kind == "federated":
            data = str(p.get("data") or "").rstrip("/\\")
            return os.path.basename(data)  # the folder's name, not where the server keeps it
        for key in ("label", "signal", "sample"):
            v = p.get(key)
            if isinstance(v, str) and v.strip():
                return _one_line(v, 80)
        if kind == "mri":
            return {"simulated": "simulated k-space", "measured": "measured k-space"}.get(str(p.get("source")), "")
        return ""

    def created(self) -> float | None:
        """When the run was made (seconds since the epoch): from status.json, else from the id; None if unknown."""
        v = self.status().get("created")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if _ID.match(self.id):
            try:
                return time.mktime(time.strptime(self.id[:15], "%Y%m%d-%H%M%S"))
            except (ValueError, OverflowError):
                return None
        return None

    # --- export ------------------------------------------------------------
    def export_zip(self) -> bytes:
        """The run folder as a zip (entries under ``<run id>/``), without its lock file, temp files and links.

        Files are opened with ``O_NOFOLLOW`` and only regular files are written, so a link planted in the
        folder never brings another file into the archive.
        """
        if self.path.is_symlink() or not self.path.is_dir():
            raise InputError(f"run {self.id} has no folder to export")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for dirpath, dirnames, filenames in os.walk(self.path, followlinks=False):
                here = Path(dirpath)
                dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
                for fname in sorted(filenames):
                    if (here == self.path and fname == LOCK_NAME) or (fname.startswith(".") and fname.endswith(".tmp")):
                        continue  # the lock is a process's, a temp file a write in progress
                    self._zip_one(zf, here / fname)
        return buf.getvalue()

    def _zip_one(self, zf: zipfile.ZipFile, p: Path) -> None:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:  # removed since the folder was listed
            return
        except OSError as e:
            if e.errno == errno.ELOOP:  # a link: never followed
                return
            raise
        with os.fdopen(fd, "rb") as f:
            st_ = os.fstat(f.fileno())
            if not stat.S_ISREG(st_.st_mode):
                return
            stamp = time.localtime(max(st_.st_mtime, 315532800.0))  # zip dates start in 1980
            info = zipfile.ZipInfo(f"{self.id}/{p.relative_to(self.path).as_posix()}", date_time=stamp[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w") as out:
                shutil.copyfileobj(f, out, 1 << 20)

    # --- metrics -------------------------------------------------------
    def log(self, row: dict) -> None:
        """Append one row to metrics.jsonl (never through a link planted under that name)."""
        line = json.dumps(row, default=_json_default, allow_nan=True)
        fd = os.open(self.path / "metrics.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if "iteration" in row:
            self._last_logged = int(row["iteration"])

    def last_logged_iteration(self) -> int:
        """The iteration of the last row in metrics.jsonl (0 when there is none)."""
        if self._last_logged is None:
            rows = self.metrics()
            self._last_logged = int(rows[-1].get("iteration", 0)) if rows else 0
        return self._last_logged

    def metrics(self) -> list[dict]:
        """All logged rows; a torn last line (crash mid-write) is skipped, a link is not read."""
        f = _open_nofollow(self.path / "metrics.jsonl")
        if f is None:
            return []
        rows = []
        with f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def truncate_metrics(self, after_iteration: int) -> None:
        """Drop rows past ``after_iteration`` (used on resume from an older checkpoint)."""
        rows = [r for r in self.metrics() if r.get("iteration", 0) <= after_iteration]
        atomic_write_text(self.path / "metrics.jsonl",
                          "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
        self._last_logged = int(rows[-1].get("iteration", 0)) if rows else 0
        for it, p in self.snapshots():  # images of the steps that will be redone
            if it > after_iteration:
                p.unlink(missing_ok=True)

    def prepare_resume(self) -> int | None:
        """Before a run restarts: cut metrics.jsonl (and snapshots) back to its checkpoint, or empty them.

        Rows logged after the checkpoint are redone by the resumed run, so keeping them would log
        them twice; a torn last line (a crash mid-write) goes too.

        Returns
        -------
        int or None
            The iteration the checkpoint stands for; None when there is no checkpoint: the run
            then starts again from the beginning, with an empty log, not an appended one.
        """
        info = self.checkpoint_info()
        self.truncate_metrics(-1 if info is None else int(info["iteration"]))  # -1: every row goes
        return None if info is None else int(info["iteration"])

    # --- arrays and images --------------------------------------------
    def save_array(self, name: str, arr: np.ndarray) -> Path:
        target = self.path / "arrays" / f"{_check_name(name)}.npy"
        with _atomic_file(target) as f:
            np.save(f, np.asarray(arr), allow_pickle=False)
        return target

    def load_array(self, name: str) -> np.ndarray:
        return np.load(self.path / "arrays" / f"{_check_name(name)}.npy", allow_pickle=False)

    def has_array(self, name: str) -> bool:
        return (self.path / "arrays" / f"{_check_name(name)}.npy").exists()

    def array_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of array ``name`` read from its header alone; None when it is missing, a link or unreadable."""
        try:
            fd = os.open(self.path / "arrays" / f"{_check_name(name)}.npy", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        with os.fdopen(fd, "rb") as f:
            try:
                reader = readers.get(np.lib.format.read_magic(f))
                return None if reader is None else tuple(int(n) for n in reader(f)[0])
            except ValueError:
                return None

    def save_image(self, name: str, img: np.ndarray) -> Path:
        """Save a float [0, 1] or uint8 image as ``<name>.png``."""
        from PIL import Image

        target = self.path / f"{_check_name(name)}.png"
        with _atomic_file(target) as f:
            Image.fromarray(to_uint8(np.asarray(img))).save(f, format="PNG")
        return target

    def save_snapshot(self, iteration: int, img: np.ndarray) -> Path:
        from PIL import Image

        target = self.path / "snapshots" / f"{int(iteration):07d}.png"
        with _atomic_file(target) as f:
            Image.fromarray(to_uint8(np.asarray(img))).save(f, format="PNG")
        return target

    def snapshots(self) -> list[tuple[int, Path]]:
        d = self.path / "snapshots"
        if not d.exists():
            return []
        out = []
        for p in d.glob("*.png"):
            if p.stem.isdigit():
                out.append((int(p.stem), p))
        return sorted(out)

    # --- json ------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / _check_name(name)
        atomic_write_text(target, json.dumps(obj, indent=1, default=_json_default))
        return target

    def read_json(self, name: str) -> dict | None:
        """The JSON in ``name``, or None when it is missing, torn or a link."""
        f = _open_nofollow(self.path / _check_name(name))
        if f is None:
            return None
        try:
            with f:
                value = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # torn, binary, absurdly nested
            return None
        # every run file holds one object; a list or a string is as unreadable as a torn file
        return value if isinstance(value, dict) else None

    # --- checkpoints -------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        """Save ``state`` (tensors and plain values) with the iteration of the last logged row.

        That iteration, kept in the same file, is what a resume cuts metrics.jsonl back to: rows logged
        after the checkpoint are redone, so keeping them would duplicate them.
        """
        import torch

        meta = {"iteration": self.last_logged_iteration(), "saved": time.time()}
        with _atomic_file(self.path / "checkpoint.pt") as f:
            torch.save({**state, _CKPT_META: meta}, f)

    def _load_checkpoint_raw(self) -> dict | None:
        import torch

        p = self.path / "checkpoint.pt"
        if p.is_symlink() or not p.exists():  # a link could point at any file: never load one
            return None
        return torch.load(p, map_location="cpu", weights_only=True)

    def load_checkpoint(self) -> dict | None:
        """The state given to :meth:`save_checkpoint` (loaded with ``weights_only=True``), or None."""
        ck = self._load_checkpoint_raw()
        if ck is not None:
            ck.pop(_CKPT_META, None)
        return ck

    def checkpoint_info(self) -> dict | None:
        """``{"iteration": ...}``: the last row logged before the checkpoint was saved, or None without one.

        A checkpoint saved before that bookkeeping existed gives its own ``iteration`` when it has one,
        else the last row logged before the file's modification time.
        """
        ck = self._load_checkpoint_raw()
        if ck is None:
            return None
        meta = ck.get(_CKPT_META)
        if isinstance(meta, dict) and "iteration" in meta:
            return {**meta, "iteration": int(meta["iteration"])}
        it = ck.get("iteration")
        if it is not None:
            return {"iteration": int(it)}
        saved = (self.path / "checkpoint.pt").stat().st_mtime
        before = [r for r in self.metrics() if float(r.get("t", 0.0)) <= saved]
        return {"iteration": int(before[-1].get("iteration", 0)) if before else 0, "saved": saved}

    def write_text(self, name: str, text: str) -> Path:
        """Write ``name`` atomically (a link planted under that name is replaced, not followed)."""
        target = self.file(name)
        atomic_write_text(target, text)
        return target

    def file(self, name: str) -> Path:
        return self.path / _check_name(name)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, kind={self.kind!r}, state={self.status().get('state')!r})"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


class RunStore:
    """All runs under one root folder.

    Parameters
    ----------
    root : path, optional
        Defaults to :func:`default_runs_root`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_runs_root()
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, spec: dict, label: str | None = None) -> Run:
        """Make a new run folder with ``spec.json`` and a queued status."""
        kind = str(spec.get("kind", "run"))
        slug = re.sub(r"[^a-z0-9-]+", "-", (label or kind).lower()).strip("-")[:40] or "run"
        rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{uuid.uuid4().hex[:6]}"
        return self.create_at(self.root / rid, spec)

    @staticmethod
    def create_at(path: str | Path, spec: dict) -> Run:
        """Make a run in an explicit folder (the CLI's ``--out DIR``)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        run = Run(path)
        run.write_json("spec.json", spec)
        run.set_status(state="queued", iteration=0, message="", created=time.time())
        return run

    def get(self, run_id: str) -> Run:
        """The run called ``run_id``; :class:`InputError` when there is none."""
        if not _ID.match(run_id or ""):
            raise InputError(f"not a run id: {run_id!r}; expected a name like 20260101-120000-restore-ab12cd")
        p = self.root / run_id
        if not self._is_own_folder(p) or not (p / "spec.json").exists():
            raise InputError(f"no run {run_id!r} in the runs folder")
        return Run(p)

    def delete(self, run_id: str) -> None:
        """Remove the run ``run_id`` and everything in its folder.

        :class:`InputError` when there is no such run, or while it is queued or running (its lock is held,
        here or by another server). The folder is first renamed to a hidden name in the root, so it leaves
        the list at once, then removed without following any link in it (a link is removed, not its target).
        """
        run = self.get(run_id)
        lock = run.try_lock()
        if lock is None:
            raise InputError(f"run {run_id} is queued or running; stop it, or wait for it to end, before deleting it")
        with lock:  # held until the folder has left its name, so nobody queues the run meanwhile
            trash = self.root / f".deleting-{run_id}-{uuid.uuid4().hex[:6]}"
            os.rename(run.path, trash)
        # fd-based on Linux (rmtree.avoids_symlink_attacks): never steps through a link swapped in meanwhile
        shutil.rmtree(trash)

    def list(self) -> list[Run]:
        """All runs, newest first (a link, or a folder that resolves outside the root, is skipped)."""
        runs = [Run(p) for p in self.root.iterdir()
                if _ID.match(p.name) and self._is_own_folder(p) and (p / "spec.json").exists()]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def _is_own_folder(self, p: Path) -> bool:
        # a symlinked run folder could point anywhere: never list or open one
        try:
            if p.is_symlink() or not p.is_dir():
                return False
            return p.resolve().parent == self.root.resolve()
        except OSError:
            return False

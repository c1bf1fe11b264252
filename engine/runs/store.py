"""One folder per run, written so that a crash or a browser refresh loses nothing.

Layout of a run folder::

    spec.json        what was asked (kind + params), written once
    status.json      state, iteration, message; replaced atomically on every change
    metrics.jsonl    one JSON object per logged step, appended
    arrays/*.npy     inputs and results (no pickle)
    snapshots/*.png  downsampled iterates, named by iteration
    checkpoint.pt    tensors only, loaded with ``weights_only=True``
    summary.json     the final numbers
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
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


def default_runs_root() -> Path:
    """Where runs live: ``$INVERSE_STUDIO_RUNS``, else the per-user data folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "inverse-studio" / "runs"


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` so readers see the old or the new file, never half of one."""
    with _atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


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
        """Merge ``fields`` into status.json (atomic)."""
        st = self.status()
        st.update(fields)
        st["updated"] = time.time()
        self.write_json("status.json", st)

    # --- metrics -------------------------------------------------------
    def log(self, row: dict) -> None:
        """Append one row to metrics.jsonl."""
        line = json.dumps(row, default=_json_default, allow_nan=True)
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def metrics(self) -> list[dict]:
        """All logged rows; a torn last line (crash mid-write) is skipped."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        rows = []
        with open(p, encoding="utf-8") as f:
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

    # --- arrays and images --------------------------------------------
    def save_array(self, name: str, arr: np.ndarray) -> Path:
        target = self.path / "arrays" / f"{_check_name(name)}.npy"
        with _atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(arr), allow_pickle=False)
        return target

    def load_array(self, name: str) -> np.ndarray:
        return np.load(self.path / "arrays" / f"{_check_name(name)}.npy", allow_pickle=False)

    def has_array(self, name: str) -> bool:
        return (self.path / "arrays" / f"{_check_name(name)}.npy").exists()

    def save_image(self, name: str, img: np.ndarray) -> Path:
        """Save a float [0, 1] or uint8 image as ``<name>.png``."""
        from PIL import Image

        target = self.path / f"{_check_name(name)}.png"
        with _atomic_path(target) as tmp:
            Image.fromarray(to_uint8(np.asarray(img))).save(tmp, format="PNG")
        return target

    def save_snapshot(self, iteration: int, img: np.ndarray) -> Path:
        from PIL import Image

        target = self.path / "snapshots" / f"{int(iteration):07d}.png"
        with _atomic_path(target) as tmp:
            Image.fromarray(to_uint8(np.asarray(img))).save(tmp, format="PNG")
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
        p = self.path / _check_name(name)
        try:
            with open(p, encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # --- checkpoints -------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        import torch

        with _atomic_path(self.path / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self) -> dict | None:
        import torch

        p = self.path / "checkpoint.pt"
        if not p.exists():
            return None
        return torch.load(p, map_location="cpu", weights_only=True)

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
        if not (p / "spec.json").exists():
            raise InputError(f"no run {run_id!r} under {self.root}")
        return Run(p)

    def list(self) -> list[Run]:
        """All runs, newest first."""
        runs = [Run(p) for p in self.root.iterdir() if (p / "spec.json").exists() and _ID.match(p.name)]
        return sorted(runs, key=lambda r: r.id, reverse=True)

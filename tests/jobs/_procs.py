"""Process helpers for the job tests."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as ended: pid 1 here need not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")

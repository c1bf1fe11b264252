"""Start the real app in a child process, wait until it answers, stop it: for the browser tests, the
security tests and the browser benchmarks (bench/redraw.py, bench/screenshots.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """``streamlit run ui/app.py`` headless on 127.0.0.1:``port`` (no Host check: the tests' own server)."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true"]


def cli_app_command(port: int, runs: Path) -> list[str]:
    """``inverse-studio app`` (the user's launcher, Host check included) on ``port`` with ``runs``."""
    return [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())",
            "app", "--port", str(port), "--runs-dir", str(runs)]


@contextmanager
def running_app(command: list[str], *, port: int, log_path: Path, env: dict | None = None,
                timeout: float = 60.0) -> Iterator[subprocess.Popen]:
    """Run ``command``; yield the process once ``/_stcore/health`` answers 200 on ``port``; stop it after.

    Output goes to ``log_path``; a server that exits or does not answer within ``timeout`` is an error
    that names the log.
    """
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the app exited with status {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"the app did not start within {timeout:.0f} s; see {log_path}")
                time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

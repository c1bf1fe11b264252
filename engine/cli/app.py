"""``inverse-studio app``: start the Streamlit app.

The server runs in :mod:`ui.serve`. On a loopback address it refuses any request whose ``Host`` is
not ``localhost``, ``127.0.0.1`` or ``[::1]`` with the port (DNS rebinding); on any other address the check
is off and a warning says the runs are open to the network. The settings of the ``.streamlit/config.toml``
shipped beside the ``ui`` package are passed as command-line options, so they hold whatever the working
directory and wherever the package is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import sys
import tomllib
from pathlib import Path

from engine.cli.common import add_subparser, say

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# the safe values stand even where the packaged config is missing (a broken install):
# no tracebacks shown to the browser, no usage statistics sent
SAFE_OPTIONS: dict[str, object] = {
    "client.showErrorDetails": "none",
    "browser.gatherUsageStats": False,
    "server.headless": True,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "app", help="start the Streamlit app")
    p.add_argument("--runs-dir", help="where runs are stored (default: $INVERSE_STUDIO_RUNS or "
                                      "~/.local/share/inverse-studio/runs)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; any non-loopback address exposes every run "
                        "to the network, with no login)")
    p.set_defaults(func=run)


def app_file() -> Path:
    """The app's entry script, ``app.py`` of the installed ``ui`` package.

    Found through the import system's spec of ``ui`` without importing it: the engine never runs UI code.
    """
    from engine.core.errors import InputError

    spec = importlib.util.find_spec("ui")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / "app.py"
        if path.is_file():
            return path
    raise InputError("the app's files (the ui package) are not installed; reinstall inverse-studio")


def config_file(app: Path) -> Path:
    """The app's ``.streamlit/config.toml``: beside ``ui/`` in a checkout and in an installed wheel alike."""
    return app.parent.parent / ".streamlit" / "config.toml"


def packaged_options(app: Path) -> dict[str, object]:
    """The packaged config's settings as ``{"section.key": value}`` over :data:`SAFE_OPTIONS`."""
    options = dict(SAFE_OPTIONS)
    path = config_file(app)
    if path.is_file():
        with path.open("rb") as f:
            options.update(_flatten(tomllib.load(f)))
    return options


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    """``{"theme": {"sidebar": {"font": x}}}`` as ``{"theme.sidebar.font": x}``."""
    out: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a host name or IP literal) serves this computer only."""
    if address.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(address: str) -> str:
    """``address`` as written in a URL or a ``Host`` header (IPv6 literals in brackets)."""
    bare = address.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def allowed_hosts(address: str, port: int) -> list[str]:
    """The ``Host`` header values accepted on a loopback ``address``: the loopback names, with the port."""
    names = list(LOOPBACK_NAMES)
    if url_host(address).lower() not in names:
        names.append(url_host(address).lower())
    return [f"{name}:{port}" for name in names]


def streamlit_flags(options: dict[str, object]) -> list[str]:
    """``--section.key value`` pairs for ``streamlit run``; a list repeats its flag once per item."""
    flags: list[str] = []
    for key, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            flags += [f"--{key}", str(item).lower() if isinstance(item, bool) else str(item)]
    return flags


def server_command(app: Path, *, port: int, address: str) -> list[str]:
    """The server's command line: :mod:`ui.serve`, then ``streamlit run`` with every setting given."""
    from engine.core.errors import InputError

    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, not {port}")
    options = {**packaged_options(app), "server.port": port, "server.address": address}
    if is_loopback(address):
        guard = [arg for host in allowed_hosts(address, port) for arg in ("--allow-host", host)]
        # Streamlit's own WebSocket Host list as a second layer (it ignores the port)
        options["server.allowedHosts"] = [h.rsplit(":", 1)[0].strip("[]") for h in allowed_hosts(address, port)]
    else:
        guard = ["--no-host-check"]
    return [sys.executable, "-m", "ui.serve", *guard, "--", "run", str(app), *streamlit_flags(options)]


def run(args: argparse.Namespace) -> int:
    app = app_file()
    env = dict(os.environ)
    if args.runs_dir:
        env["INVERSE_STUDIO_RUNS"] = str(Path(args.runs_dir).expanduser().resolve())
    cmd = server_command(app, port=args.port, address=args.address)
    if not is_loopback(args.address):
        say(f"Warning: serving on {args.address}, every run is exposed to the network: anyone who can reach "
            f"port {args.port} of this computer can open, start and delete runs (the app has no login). "
            "Use the default --address 127.0.0.1 unless the network is trusted.")
    say(f"Inverse Studio: http://{url_host(args.address)}:{args.port}")
    # the project's folder (or site-packages, installed): the engine package is importable from it
    os.chdir(app.parent.parent)
    os.execve(sys.executable, cmd, env)
    return 0  # pragma: no cover

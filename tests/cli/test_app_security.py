"""``inverse-studio app`` on loopback refuses DNS-rebound requests; off loopback it warns that runs are exposed."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import main
from tests.e2e.server import cli_app_command, free_port, running_app
from ui.serve import HostGuard

ROOT = Path(__file__).resolve().parents[2]
EVIL = "rebind.evil"


def _get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _ws_handshake(port: int, host: str, origin: str) -> int:
    """The HTTP status the server answers a WebSocket handshake to ``/_stcore/stream`` with."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    # the user's launcher, `inverse-studio app`, with its Host check
    port = free_port()
    runs = tmp_path_factory.mktemp("security-runs")
    with running_app(cli_app_command(port, runs), port=port, log_path=runs.parent / "security-server.log",
                     timeout=45):
        yield port


def test_the_page_is_served_to_loopback_names(port):
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, body = _get(port, host)
        assert status == 200 and b"<html" in body.lower(), host


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/_stcore/host-config", "/restoration"])
def test_a_rebound_host_is_refused_before_streamlit(port, path):
    status, body = _get(port, f"{EVIL}:{port}", path)
    assert status == 403 and b"refused" in body


def test_a_loopback_name_on_another_port_is_refused(port):
    assert _get(port, f"127.0.0.1:{port + 1}")[0] == 403


def test_the_websocket_opens_same_origin_and_is_refused_when_rebound(port):
    assert _ws_handshake(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == 101
    assert _ws_handshake(port, f"{EVIL}:{port}", f"http://{EVIL}:{port}") == 403


def _launch(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[str]:
    """The server command ``inverse-studio app ARGV`` would start (nothing is started)."""
    started: list[list[str]] = []
    monkeypatch.setattr(os, "chdir", lambda _path: None)
    monkeypatch.setattr(os, "execve", lambda _exe, cmd, _env: started.append(cmd))
    assert main(["app", *argv]) == 0
    return started[0]


def _flag(cmd: list[str], name: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == name]


def test_loopback_launch_checks_hosts_and_passes_the_safe_settings(monkeypatch, capsys):
    cmd = _launch(monkeypatch, ["--port", "8600"])
    assert cmd[1:3] == ["-m", "ui.serve"]
    assert _flag(cmd, "--allow-host") == ["localhost:8600", "127.0.0.1:8600", "[::1]:8600"]
    assert "--no-host-check" not in cmd
    assert _flag(cmd, "--client.showErrorDetails") == ["none"]
    assert _flag(cmd, "--browser.gatherUsageStats") == ["false"]
    assert _flag(cmd, "--server.address") == ["127.0.0.1"] and _flag(cmd, "--server.port") == ["8600"]
    assert "exposed" not in capsys.readouterr().err


def test_a_network_address_turns_the_check_off_and_warns(monkeypatch, capsys):
    cmd = _launch(monkeypatch, ["--address", "0.0.0.0", "--port", "8600"])
    assert "--no-host-check" in cmd and "--allow-host" not in cmd
    assert _flag(cmd, "--server.address") == ["0.0.0.0"]
    assert "every run is exposed to the network" in capsys.readouterr().err


def test_a_bad_port_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(os, "execve", lambda *_a: pytest.fail("started"))
    assert main(["app", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip().startswith("inverse-studio app: error: --port must be")


def _asgi(guard: HostGuard, scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message: dict) -> None:
        sent.append(message)

    # in a thread of its own: a browser test earlier in the same process may leave an event loop running here
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, guard(scope, receive, send)).result(timeout=10)
    return sent


def test_the_guard_refuses_two_host_headers_and_passes_lifespan():
    reached: list[str] = []

    async def app(scope, _receive, _send) -> None:
        reached.append(scope["type"])

    guard = HostGuard(app, hosts=["127.0.0.1:8600"])
    two = {"type": "http", "headers": [(b"host", b"127.0.0.1:8600"), (b"host", b"evil:8600")]}
    assert _asgi(guard, two)[0]["status"] == 403
    assert _asgi(guard, {"type": "websocket", "headers": [(b"host", b"EVIL:8600")]})[0]["type"] == "websocket.close"
    _asgi(guard, {"type": "http", "headers": [(b"host", b"127.0.0.1:8600")]})
    _asgi(guard, {"type": "lifespan"})
    assert reached == ["http", "lifespan"]

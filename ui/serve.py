"""The server process of ``inverse-studio app``: Streamlit's own server behind a ``Host`` check.

The app has no login. Bound to loopback, its protection is that other machines cannot reach it, but a web
page the user visits can, through DNS rebinding: the page's own host name is made to resolve to 127.0.0.1,
and the browser then sends the page's requests (the app's WebSocket included) to the app as same-origin.
Such requests still name the page's host in their ``Host`` header. :class:`HostGuard` answers every HTTP
request and WebSocket handshake whose ``Host`` is not one of the allowed ``name:port`` values with 403,
before Streamlit sees it: no session is made and no script runs.

``inverse-studio app`` starts this module as ``python -m ui.serve (--allow-host HOST:PORT ... |
--no-host-check) -- run SCRIPT [streamlit options]``. Importing the module loads nothing from Streamlit;
its server is loaded by :func:`main`, in that process only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REFUSAL = (b"Inverse Studio answers only requests addressed to this computer (localhost); this one named "
           b"another host, so it was refused.\n")


class HostGuard:
    """ASGI middleware: refuse requests whose ``Host`` header is not one of ``hosts`` (403).

    Parameters
    ----------
    app : the ASGI application behind the check.
    hosts : the accepted ``Host`` values, ``name:port`` (compared case-insensitively).
    """

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.strip().lower() for h in hosts)
        if not self.hosts:
            raise ValueError("HostGuard needs at least one accepted host")

    def allows(self, scope: Scope) -> bool:
        """Whether the request carries exactly one ``Host`` header, and an accepted one."""
        values = [v for k, v in scope.get("headers", ()) if k.lower() == b"host"]
        # two Host headers are ambiguous (a proxy and the app could read different ones): refuse
        return len(values) == 1 and values[0].decode("latin-1").strip().lower() in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.allows(scope):
            await (self._refuse_http(send) if scope["type"] == "http" else self._refuse_websocket(scope, receive, send))
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse_http(send: Send) -> None:
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(REFUSAL)).encode())]})
        await send({"type": "http.response.body", "body": REFUSAL})

    @staticmethod
    async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()  # websocket.connect: the handshake is answered only after it
        if message.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "websocket.http.response.body", "body": REFUSAL})
        else:
            # closing before accepting: the server answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008})


def install_host_check(hosts: Iterable[str]) -> None:
    """Put :class:`HostGuard` in front of the ASGI app Streamlit's server builds in this process.

    Raises
    ------
    RuntimeError : this Streamlit version builds its server another way; the app is then not started
        rather than started unprotected.
    """
    hosts = list(hosts)
    try:
        server = importlib.import_module("streamlit.web.server.starlette.starlette_server")
        build = server.create_starlette_app
    except (ImportError, AttributeError) as e:
        raise RuntimeError("this Streamlit version builds its web server in a way the Host check does not know; "
                           "the app is not started unprotected (install streamlit>=1.67,<2)") from e

    def build_checked(*a: Any, **kw: Any) -> HostGuard:
        return HostGuard(build(*a, **kw), hosts=hosts)

    server.create_starlette_app = build_checked


def main(argv: list[str] | None = None) -> int:
    """Run ``streamlit`` with the arguments after ``--``, behind the Host check unless ``--no-host-check``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, streamlit_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m ui.serve")
    check = parser.add_mutually_exclusive_group(required=True)
    check.add_argument("--allow-host", action="append", metavar="HOST:PORT",
                       help="an accepted Host header value (repeat for more)")
    check.add_argument("--no-host-check", action="store_true", help="accept any Host (the app is on the network)")
    ns = parser.parse_args(own)
    if not streamlit_args:
        parser.error("the streamlit arguments are missing after --")
    if ns.allow_host:
        install_host_check(ns.allow_host)
    st_cli = importlib.import_module("streamlit.web.cli")
    # the same program name as `python -m streamlit`, so the server sees the usual command line
    return st_cli.main(args=streamlit_args, prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main())

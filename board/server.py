"""Serving the board: a socket bound here (so a taken port is one clear line), then uvicorn."""

from __future__ import annotations

import logging
import socket

from sqlalchemy import func, select

from board.app import create_app
from store.models import BoardUser
from tocsin.app import App
from tocsin.errors import UsageError
from tocsin.ui import err


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a UsageError naming the option."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host: cannot use {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--port: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(app: App, host: str, port: int) -> None:
    """Serve until Ctrl-C. Forwarded headers are ignored unless board.trusted_proxies
    names the proxy: a client must not pick its own address (the rate limit keys on it)."""
    import uvicorn

    with app.db.session() as session:
        users = session.scalar(select(func.count()).select_from(BoardUser)) or 0
    sock = listen(host, port)
    asgi = create_app(app.config, app.db, app.clock)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"tocsin board on http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C stops it)")
    if not users:
        err.print("No log-ins yet: create one with `tocsin user add NAME --role admin`.")
    level = {-1: logging.WARNING, 0: logging.INFO}.get(app.verbosity, logging.DEBUG)
    config = uvicorn.Config(
        asgi,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=app.verbosity > 0,
        log_level=level,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])

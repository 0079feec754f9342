"""Serving the board: one socket bound here (so a taken port is one clear line), then
``board.workers`` processes running uvicorn on it.

One Python process keeps one core busy at most, so the board forks workers after the
socket is bound; the kernel hands each connection to one of them. They share the store
(where sessions and the rate limit's failures live) and the CSRF key made here; each
has its own database engine and its own copy of the campaign summary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from board.app import THREADS, create_app
from store.db import READER_SETTINGS, Database
from store.models import BoardUser
from tocsin.app import App
from tocsin.errors import UsageError
from tocsin.ui import err

log = logging.getLogger(__name__)


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
    return sock


def _analyze(db: Database) -> None:
    """Give SQLite's planner statistics (sampled, so it takes moments). Without them it
    started a network's notices from every sent notice: 300 ms instead of 9 ms."""
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
    except OperationalError as exc:  # a read-only store: serve it without
        log.warning("board: could not ANALYZE the store: %s", exc.orig)


def _run(app: App, sock: socket.socket, key: bytes) -> None:
    """One worker: its own engine, then uvicorn until SIGINT or SIGTERM."""
    import uvicorn

    # The handlers' threads, the cache's background refreshes, and one to spare.
    db = Database(app.config.database.url, pool_size=THREADS + 4, pg_settings=READER_SETTINGS)
    asgi = create_app(app.config, db, app.clock, key=key)
    level = {-1: logging.WARNING, 0: logging.WARNING}.get(app.verbosity, logging.INFO)
    config = uvicorn.Config(
        asgi,
        # Forwarded headers are ignored unless board.trusted_proxies names the proxy
        # (board/security.py): a client must not pick its own address for the rate limit.
        proxy_headers=False,
        server_header=False,
        access_log=app.verbosity > 1,
        log_level=level,
        log_config=None,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        db.dispose()


def serve(app: App, host: str, port: int) -> None:
    """Serve until Ctrl-C (or SIGTERM), with ``board.workers`` processes."""
    sock, key = prepare(app, host, port)
    if app.config.board.workers == 1 or not hasattr(os, "fork"):
        _run(app, sock, key)
        return
    children = fork(app, sock, key)

    def forward(_signum: int, _frame: object) -> None:
        stop(children)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    wait(children)
    sock.close()


def prepare(app: App, host: str, port: int) -> tuple[socket.socket, bytes]:
    """The listening socket and the CSRF key, with the store's connections closed (the
    workers are forked next: no connection may cross the fork)."""
    with app.db.session() as session:
        users = session.scalar(select(func.count()).select_from(BoardUser)) or 0
    if app.db.is_sqlite:
        _analyze(app.db)
    app.db.dispose()  # no connection may cross the fork
    sock = listen(host, port)
    key = app.config.board.secret.encode() or secrets.token_bytes(32)
    workers = app.config.board.workers
    shown = f"[{host}]" if ":" in host else host
    err.print(
        f"tocsin board on http://{shown}:{sock.getsockname()[1]}/ "
        f"({workers} worker{'s' if workers > 1 else ''}; Ctrl-C stops it)"
    )
    if not users:
        err.print("No log-ins yet: create one with `tocsin user add NAME --role admin`.")
    return sock, key


def fork(app: App, sock: socket.socket, key: bytes) -> list[int]:
    """``board.workers`` processes serving ``sock``; their process ids."""
    children = []
    for _ in range(app.config.board.workers):
        pid = os.fork()
        if pid == 0:  # a worker
            code = 0
            try:
                _run(app, sock, key)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    return children


def stop(children: list[int]) -> None:
    """Ask every worker to finish (uvicorn's graceful shutdown)."""
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)


def wait(children: list[int]) -> int:
    """Wait for every worker; the worst exit code (uvicorn re-raises the SIGTERM it
    handled once it has shut down: that end is a clean one)."""
    worst = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                code = os.waitstatus_to_exitcode(status)
                worst = max(worst, 0 if code == -signal.SIGTERM else abs(code))
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return worst

"""The sites' web server: one HTTP and one HTTPS port on every site address.

Each site address (``127.10.N.M``) gets a listening socket on the same two
ports, so a URL looks like ``http://www.example.com:41234/`` and the Host
header picks the site, as on any shared host. A request that reaches an
address the site is not (or no longer) on gets the host's default page.
The canary is a separate server on ``127.0.0.1`` that records every hit.

The hit log counts the requests the sites got by host, path and query
(:func:`hit_key`), without bound, so a test can tell which URLs were fetched
more than once (a crawl worker killed mid-batch: only its batch is fetched again).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tocsin.sandbox.catalogue import SiteSpec
from tocsin.sandbox.pages import BEHAVIOURS, Env, Reply, generic_loader, not_found, security_txt

log = logging.getLogger("tocsin.sandbox")

SERVER_HEADER = "Apache/2.4.58 (Unix)"


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def hit_key(host: str, path_qs: str) -> str:
    """A request's key in the hit log: ``host/path?query`` (no scheme, no port)."""
    return f"{host.lower().rstrip('.')}{path_qs}"


def url_hit_key(url: str) -> str:
    """The hit-log key a fetch of ``url`` is counted under."""
    parts = urlsplit(url)
    return hit_key(
        parts.hostname or "", (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    )


def entry_path(site: SiteSpec) -> str:
    return site.entry.split("?", 1)[0]


class SiteServer:
    """Serves every site (by Host header), the sandbox's attacker hosts and third parties."""

    def __init__(self, workdir: Path, sites: dict[str, SiteSpec], states: dict[str, str]) -> None:
        self.workdir = workdir
        self.sites = sites
        self.states = states
        self.http_port = 0
        self.https_port = 0
        self.canary_port = 0
        self.ssl_context: ssl.SSLContext | None = None
        self.attacker_log: list[dict[str, Any]] = []
        self.canary_hits: list[dict[str, Any]] = []
        self.request_log: deque[dict[str, Any]] = deque(maxlen=20000)
        self._hits: Counter[str] = Counter()  # hit_key -> requests (the hit log)
        self._hits_lock = threading.Lock()  # read from the test's thread, written in the loop's
        self._hosts: dict[str, list[SiteSpec]] = {}
        self._runner: web.AppRunner | None = None
        self._canary_runner: web.AppRunner | None = None
        self._bound: dict[tuple[str, str], web.TCPSite] = {}
        self._websockets: set[web.WebSocketResponse] = set()
        self.rebuild()

    # ------------------------------------------------------------------ routing table

    def rebuild(self) -> None:
        """Re-index sites by host (after a move); entry-path owners first."""
        hosts: dict[str, list[SiteSpec]] = {}
        for site in self.sites.values():
            if site.ip:
                hosts.setdefault(site.host.lower(), []).append(site)
        self._hosts = hosts

    def origin(self, host: str, scheme: str = "http") -> str:
        port = self.https_port if scheme == "https" else self.http_port
        return f"{scheme}://{host}:{port}"

    def hits(self) -> Counter[str]:
        """A copy of the hit log: requests by ``host/path?query``."""
        with self._hits_lock:
            return Counter(self._hits)

    def clear_hits(self) -> None:
        with self._hits_lock:
            self._hits.clear()

    def track_ws(self, ws: web.WebSocketResponse) -> None:
        self._websockets.add(ws)

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self, http_ips: set[str], https_ips: set[str], ssl_context: ssl.SSLContext
    ) -> None:
        self.ssl_context = ssl_context
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        first = sorted(http_ips)[0]
        for _attempt in range(20):
            self.http_port = free_port(first)
            self.https_port = free_port(first)
            if self.http_port == self.https_port:
                continue
            try:
                for ip in sorted(http_ips):
                    await self.bind(ip, "http")
                for ip in sorted(https_ips):
                    await self.bind(ip, "https")
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                for site in list(self._bound.values()):
                    await site.stop()
                self._bound.clear()
        else:
            raise OSError("sandbox: no port free on every site address")
        await self._start_canary()

    async def bind(self, ip: str, scheme: str) -> None:
        """Listen on ``ip`` at the sandbox's port for ``scheme`` (idempotent)."""
        if (ip, scheme) in self._bound:
            return
        assert self._runner is not None
        port = self.http_port if scheme == "http" else self.https_port
        ctx = self.ssl_context if scheme == "https" else None
        site = web.TCPSite(self._runner, ip, port, ssl_context=ctx, backlog=512)
        await site.start()
        self._bound[(ip, scheme)] = site

    def bound(self) -> set[tuple[str, str]]:
        return set(self._bound)

    async def _start_canary(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.canary)
        self._canary_runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.2
        )
        await self._canary_runner.setup()
        for _attempt in range(10):
            self.canary_port = free_port("127.0.0.1")
            try:
                await web.TCPSite(self._canary_runner, "127.0.0.1", self.canary_port).start()
                return
            except OSError:
                continue
        raise OSError("sandbox: no free port for the canary")

    async def stop(self) -> None:
        for ws in list(self._websockets):
            with contextlib.suppress(Exception):
                await ws.close()
        self._websockets.clear()
        for runner in (self._runner, self._canary_runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._canary_runner = None
        self._bound.clear()

    # ------------------------------------------------------------------ handlers

    async def canary(self, request: web.Request) -> web.Response:
        self.canary_hits.append(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "peer": request.remote,
            }
        )
        return web.Response(text="canary", headers={"Access-Control-Allow-Origin": "*"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower().rstrip(".")
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local_ip = sockname[0] if sockname else ""
        self.request_log.append(
            {
                "time": time.time(),
                "host": host,
                "ip": local_ip,
                "method": request.method,
                "path": request.path_qs,
                "user_agent": request.headers.get("User-Agent", ""),
                "referer": request.headers.get("Referer", ""),
                "scheme": "https" if request.secure else "http",
            }
        )
        with self._hits_lock:
            self._hits[hit_key(host, request.path_qs)] += 1
        specs = [s for s in self._hosts.get(host, ()) if s.ip == local_ip]
        if not specs:
            reply = Reply(
                "<!doctype html><title>Site not found</title><h1>Site not found</h1>"
                "<p>No website is configured at this address.</p>",
                status=404,
            )
            return self._finish(reply)
        try:
            result = await self._dispatch(request, specs)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("sandbox: handler failed for %s%s", host, request.path_qs)
            result = Reply("<h1>500 Internal Server Error</h1>", status=500)
        if isinstance(result, Reply):
            return self._finish(result)
        return result

    def _finish(self, reply: Reply) -> web.Response:
        response = reply.to_response()
        response.headers.setdefault("Server", SERVER_HEADER)
        return response

    async def _dispatch(
        self, request: web.Request, specs: list[SiteSpec]
    ) -> Reply | web.StreamResponse:
        path = request.path
        owners = [s for s in specs if entry_path(s) == path]
        ordered = owners + [s for s in specs if s not in owners]
        for spec in ordered:
            state = self.states.get(spec.id, "clean")
            if state == "offline":
                if spec in owners:
                    return not_found()
                continue
            env = Env(spec, state, request, self)
            behaviour = BEHAVIOURS.get(spec.behaviour) or BEHAVIOURS["none"]
            result = await behaviour(env)
            if result is None:
                continue
            if (
                isinstance(result, Reply)
                and state == "compromised"
                and spec.kind in ("clean", "tricky-clean")
                and result.status == 200
                and result.content_type.startswith("text/html")
            ):
                text = result.body if isinstance(result.body, str) else result.body.decode()
                result.body = text.replace("</body>", generic_loader(env) + "\n</body>", 1)
            return result
        for spec in specs:
            if spec.security_txt != "none" and self.states.get(spec.id) != "offline":
                reply = security_txt(Env(spec, "clean", request, self), spec.security_txt)
                if reply is not None:
                    return reply
        if path == "/robots.txt":
            return Reply("User-agent: *\nDisallow: /wp-admin/\n", content_type="text/plain")
        return not_found()

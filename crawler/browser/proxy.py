"""The browser's guard: a local HTTP proxy that resolves, checks, then connects.

Chromium is launched with this proxy for everything (Playwright forces
``<-loopback>`` into the bypass list, so loopback goes through it too). The
proxy resolves each host through tocsin's resolver (``network.hosts_file``
first), refuses inward addresses, and opens the connection to the address it
checked. Chromium never resolves a name itself, so a rebinding answer cannot
get past the check, and WebSockets, workers and service workers, which a
Playwright route handler does not see, are covered too.

Plain HTTP is forwarded one request per connection (``Connection: close``);
HTTPS and WebSockets go through ``CONNECT`` tunnels. Responses are capped in
size and idle time.

The browser's own background services (component and Safe Browsing updates,
sign-in, autofill, metrics) are switched off by launch flags
(``crawler.settings.CHROMIUM_FLAGS``); should one still call home, the proxy
refuses the connection and counts it (:data:`SERVICE_HOSTS`): a crawl sends
nothing to Google that a page did not ask for. With ``log_path`` the proxy
appends one JSON line per connection asked for, with what it did, for audits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.net import NetPolicy
from tocsin.errors import BlockedAddress, ResolveError

log = logging.getLogger("tocsin.browser.proxy")

_MAX_HEAD = 64 * 1024
_HOP_BY_HOP = {
    b"proxy-connection",
    b"proxy-authorization",
    b"connection",
    b"keep-alive",
    b"te",
    b"trailer",
    b"upgrade",
}


# Hosts of Chromium's background services (updates, Safe Browsing, sign-in, autofill,
# metrics, field trials). Refused whoever asks: a page that loads one loses nothing
# the verdict needs, and Chromium's own calls never leave the machine.
SERVICE_HOSTS = re.compile(
    r"^(accounts\.google\.com|clients\d*\.google\.com|android\.clients\.google\.com"
    r"|sb-ssl\.google\.com|dl\.google\.com|tools\.google\.com"
    r"|(update|safebrowsing|safebrowsingohttpgateway|content-autofill|optimizationguide-pa"
    r"|clientservices|passwordsleakcheck-pa|chromesyncpasswords-pa|chromewebstore"
    r"|chromereporting-pa|commerce-pa|lensfrontend-pa|people-pa|aida)\.googleapis\.com"
    r"|([a-z0-9-]+\.)*gvt[12]\.com)$",
    re.I,
)
SERVICE_REASON = "a browser background service"


@dataclass(frozen=True)
class ProxyBlock:
    host: str
    port: int
    address: str
    reason: str
    at: float


class GuardProxy:
    """An asyncio HTTP/CONNECT proxy on 127.0.0.1 that only connects to guarded addresses."""

    def __init__(
        self,
        policy: NetPolicy,
        *,
        max_bytes: int = 64 * 1024**2,
        idle_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        log_path: str | None = None,
    ) -> None:
        self.policy = policy
        self.log_path = log_path
        self._log_file: Any = None
        self.service_refused: Counter[str] = Counter()
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.blocks: deque[ProxyBlock] = deque(maxlen=2048)
        self.connections: deque[tuple[str, int, str]] = deque(maxlen=4096)  # host, port, address
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> int:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_HEAD)
            self.port = self._server.sockets[0].getsockname()[1]
            log.debug("guard proxy on %s", self.url)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self.service_refused:
            log.info("browser guard: refused background services %s", dict(self.service_refused))
        if self._log_file is not None:
            with contextlib.suppress(Exception):
                self._log_file.close()
            self._log_file = None

    def _note(self, method: str, host: str, port: int, action: str) -> None:
        if self.log_path and self._log_file is None:
            with contextlib.suppress(OSError):  # a few short lines: not worth a thread
                self._log_file = open(self.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        if self._log_file is not None:
            record = {"at": time.time(), "method": method, "host": host.lower(), "port": port}
            with contextlib.suppress(Exception):
                self._log_file.write(json.dumps({**record, "action": action}) + "\n")

    def block_for(self, host: str, since: float = 0.0) -> ProxyBlock | None:
        """The latest block of ``host`` (for attributing a failed browser request)."""
        host = host.lower()
        for block in reversed(self.blocks):
            if block.host == host and block.at >= since:
                return block
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except TimeoutError:
            pass
        except Exception:
            log.debug("proxy connection failed", exc_info=True)
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        request_line, _, header_block = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ", 2)
        except ValueError:
            await self._reply(writer, 400, "bad request line")
            return
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            port = int(port_text) if port_text.isdigit() else 443
            upstream = await self._open(writer, host, port, "CONNECT")
            if upstream is None:
                return
            up_reader, up_writer = upstream
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe_both(reader, writer, up_reader, up_writer)
            return

        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            await self._reply(writer, 400, "only absolute http:// URLs and CONNECT")
            return
        port = parts.port or 80
        upstream = await self._open(writer, parts.hostname, port, method)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = [
            line
            for line in header_block.split(b"\r\n")
            if line and line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP
        ]
        headers.append(b"Connection: close")
        up_writer.write(
            f"{method} {path} {version}".encode("latin-1")
            + b"\r\n"
            + b"\r\n".join(headers)
            + b"\r\n\r\n"
        )
        await up_writer.drain()
        await self._pipe_both(reader, writer, up_reader, up_writer)

    async def _open(
        self, writer: asyncio.StreamWriter, host: str, port: int, method: str = ""
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if SERVICE_HOSTS.match(host):
            self.service_refused[host.lower()] += 1
            self.blocks.append(ProxyBlock(host.lower(), port, "", SERVICE_REASON, time.monotonic()))
            self._note(method, host, port, "refused-service")
            log.info("browser guard: refused %s:%s (%s)", host, port, SERVICE_REASON)
            await self._reply(writer, 403, f"blocked by tocsin: {SERVICE_REASON}")
            return None
        try:
            address = await self.policy.address_for_async(host)
        except BlockedAddress as exc:
            self._note(method, host, port, "blocked")
            self.blocks.append(
                ProxyBlock(host.lower(), port, exc.address, exc.reason, time.monotonic())
            )
            log.info("browser guard: blocked %s:%s (%s: %s)", host, port, exc.address, exc.reason)
            await self._reply(writer, 403, f"blocked by tocsin: {exc.address} is a {exc.reason}")
            return None
        except ResolveError as exc:
            self._note(method, host, port, "unresolved")
            await self._reply(writer, 502, f"cannot resolve: {exc}")
            return None
        self._note(method, host, port, "connect")
        try:
            upstream = await asyncio.wait_for(
                asyncio.open_connection(address, port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            await self._reply(writer, 502, f"cannot connect: {exc.__class__.__name__}")
            return None
        self.connections.append((host.lower(), port, address))
        return upstream

    async def _reply(self, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        body = text.encode("utf-8", "replace")
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"X-Tocsin-Guard: {status}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
            + body
        )
        with contextlib.suppress(Exception):
            await writer.drain()

    async def _pipe_both(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        up = asyncio.create_task(self._pipe(reader, up_writer, cap=self.max_bytes))
        down = asyncio.create_task(self._pipe(up_reader, writer, cap=self.max_bytes))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            with contextlib.suppress(Exception):
                up_writer.close()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, cap: int
    ) -> None:
        total = 0
        with contextlib.suppress(ConnectionError, TimeoutError, asyncio.CancelledError):
            while True:
                chunk = await asyncio.wait_for(src.read(65536), self.idle_timeout)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    log.info("browser guard: connection over %d bytes, cut", cap)
                    break
                dst.write(chunk)
                await dst.drain()
        with contextlib.suppress(Exception):
            if dst.can_write_eof():
                dst.write_eof()

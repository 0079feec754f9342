"""Downloading an http(s) feed through the SSRF guard, with a deadline and a size cap.

The name is resolved once with the shared resolver (``network.hosts_file``
first), the addresses are checked by the guard, and the connection goes to an
allowed address (``Host`` and TLS SNI keep the name), so a rebinding name
cannot slip past. Redirects are followed by hand, each hop checked the same
way. Feeds are fetched unattended (cron), so a download survives what passes:
a dead address among several, a dropped connection, 429 and 5xx answers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx

from tocsin import __version__
from tocsin.clock import utcnow
from tocsin.config import Config
from tocsin.errors import BlockedAddress, FetchError
from tocsin.net.guard import Guard
from tocsin.net.resolver import Resolver
from tocsin.net.retry import parse_retry_after

log = logging.getLogger("tocsin.ingest.fetch")

MAX_REDIRECTS = 5
ATTEMPTS = 3  # tries of a download that failed in a way that may pass
BACKOFF = 1.0  # seconds before the second try, doubled after; a Retry-After wins
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16


class _Transient(FetchError):
    """A failure worth another try: no connection, a dropped one, 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Bounds:
    """How long a download may take and how large it may be, and the keys that say so."""

    timeout: float
    max_bytes: int
    timeout_key: str = "ingest.fetch_timeout"
    max_bytes_key: str = "ingest.fetch_max_bytes"
    purpose: str = "feed ingest"  # in the User-Agent


def fetch(url: str, config: Config, sink: BinaryIO, bounds: Bounds | None = None) -> int:
    """Write the body at ``url`` to ``sink``; return its size or raise :class:`FetchError`.

    ``ingest.fetch_timeout`` bounds the whole download, retries included (and
    each network operation); ``ingest.fetch_max_bytes`` bounds the body after
    any ``Content-Encoding`` is undone (other fetches, such as rule packs, pass
    their own ``bounds``). Each address the guard allows is tried in turn, and a
    transient failure is tried again (``ATTEMPTS`` in all), so a feed behind
    several addresses, or one busy for a moment, still arrives. ``sink`` must be
    seekable: a retry starts it again.
    """
    if bounds is None:
        bounds = Bounds(config.ingest.fetch_timeout.total_seconds(), config.ingest.fetch_max_bytes)
    timeout = bounds.timeout
    fetcher = _Fetcher(config, time.monotonic() + timeout, bounds)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fetcher.fetch(client, url, sink)
            except _Transient as exc:
                wait = BACKOFF * 2 ** (attempt - 1) if exc.retry_after is None else exc.retry_after
                if attempt == ATTEMPTS or time.monotonic() + wait >= fetcher.deadline:
                    tries = "1 try" if attempt == 1 else f"{attempt} tries"
                    raise FetchError(f"{exc} ({tries})") from None
                log.info("feed %s: %s; again in %.1f s", url[:200], exc, wait)
                time.sleep(wait)
                sink.seek(0)
                sink.truncate()


class _Fetcher:
    def __init__(self, config: Config, deadline: float, bounds: Bounds) -> None:
        self.guard = Guard.from_config(config.network)
        self.resolver = Resolver.from_config(config.network)
        self.bounds = bounds
        self.deadline = deadline
        self.headers = {"User-Agent": f"tocsin/{__version__} ({bounds.purpose})"}

    def fetch(self, client: httpx.Client, url: str, sink: BinaryIO) -> int:
        """One try: follow redirects by hand, each hop through the guard."""
        for _hop in range(MAX_REDIRECTS + 1):
            response, host = self._connect(client, url)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                status = f"HTTP {response.status_code} {response.reason_phrase}"
                if response.status_code in RETRY_STATUSES:
                    wait = parse_retry_after(response.headers.get("retry-after"), utcnow())
                    raise _Transient(status, wait)
                if response.status_code != 200:
                    raise FetchError(status)
                return _save(response, sink, self.bounds, self.deadline)
            except httpx.TransportError as exc:
                raise _Transient(f"{host}: {exc.__class__.__name__}: {exc}") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"{host}: {exc.__class__.__name__}: {exc}") from None
            finally:
                response.close()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _connect(self, client: httpx.Client, url: str) -> tuple[httpx.Response, str]:
        """The response from the first address of ``url``'s host that the guard allows
        and that answers; Host and SNI keep the name."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchError(f"not an http(s) URL: {url[:200]}")
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise FetchError(f"bad URL {url[:200]}: {exc}") from None
        if not host:
            raise FetchError(f"no host in {url[:200]}")
        addresses = self.resolver.resolve(host).addresses
        allowed = [a for a in addresses if self.guard.reason(a) is None]
        if not allowed:
            raise BlockedAddress(host, addresses[0], self.guard.reason(addresses[0]) or "refused")
        failures: list[str] = []
        for address in allowed:
            request = _pinned_request(client, parts, host, port, address, self.headers)
            try:
                return client.send(request, stream=True), host
            except httpx.TransportError as exc:
                failures.append(f"{address}: {exc.__class__.__name__}: {exc}")
            except httpx.HTTPError as exc:
                raise FetchError(f"{host}: {exc.__class__.__name__}: {exc}") from None
        raise _Transient(f"{host}: no address answered ({'; '.join(failures)})")


def _pinned_request(
    client: httpx.Client,
    parts: SplitResult,
    host: str,
    port: int | None,
    address: str,
    headers: dict[str, str],
) -> httpx.Request:
    """A request to ``address``, with Host and TLS SNI set to ``host``."""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{port}" if port else "")
    pinned = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    host_header = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return client.build_request(
        "GET",
        pinned,
        headers={**headers, "Host": host_header},
        extensions={"sni_hostname": host} if parts.scheme.lower() == "https" else {},
    )


def _save(response: httpx.Response, sink: BinaryIO, bounds: Bounds, deadline: float) -> int:
    cap, key = bounds.max_bytes, bounds.max_bytes_key
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap and "content-encoding" not in response.headers:
        raise FetchError(f"over the size cap: {declared} bytes > {key} {cap}")
    size = 0
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise FetchError(f"over the size cap: more than {key} {cap} bytes")
        if time.monotonic() > deadline:
            raise FetchError(f"took longer than {bounds.timeout_key}")
        sink.write(chunk)
    return size

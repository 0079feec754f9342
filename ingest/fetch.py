"""Downloading an http(s) feed through the SSRF guard, with a deadline and a size cap.

The name is resolved once with the shared resolver (``network.hosts_file``
first), the address is checked by the guard, and the connection goes to that
address (``Host`` and TLS SNI keep the name), so a rebinding name cannot slip
past. Redirects are followed by hand, each hop checked the same way.
"""

from __future__ import annotations

import time
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from tocsin import __version__
from tocsin.config import Config
from tocsin.errors import BlockedAddress, FetchError
from tocsin.net.guard import Guard
from tocsin.net.resolver import Resolver

MAX_REDIRECTS = 5
_CHUNK = 1 << 16


def fetch(url: str, config: Config, sink: BinaryIO) -> int:
    """Write the body at ``url`` to ``sink``; return its size or raise :class:`FetchError`.

    ``ingest.fetch_timeout`` bounds the whole download (and each network
    operation); ``ingest.fetch_max_bytes`` bounds the body after any
    ``Content-Encoding`` is undone.
    """
    guard = Guard.from_config(config.network)
    resolver = Resolver.from_config(config.network)
    timeout = config.ingest.fetch_timeout.total_seconds()
    cap = config.ingest.fetch_max_bytes
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": f"tocsin/{__version__} (feed ingest)"}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            request, host = _pinned_request(client, url, guard, resolver, headers)
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchError(f"{host}: {exc.__class__.__name__}: {exc}") from None
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}")
                return _save(response, sink, cap, deadline)
            except httpx.HTTPError as exc:
                raise FetchError(f"{host}: {exc.__class__.__name__}: {exc}") from None
            finally:
                response.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _pinned_request(
    client: httpx.Client, url: str, guard: Guard, resolver: Resolver, headers: dict[str, str]
) -> tuple[httpx.Request, str]:
    """A request to the checked address of ``url``'s host, with Host and SNI set to the name."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"not an http(s) URL: {url[:200]}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise FetchError(f"bad URL {url[:200]}: {exc}") from None
    if not host:
        raise FetchError(f"no host in {url[:200]}")
    addresses = resolver.resolve(host).addresses
    allowed = [a for a in addresses if guard.reason(a) is None]
    if not allowed:
        raise BlockedAddress(host, addresses[0], guard.reason(addresses[0]) or "refused")
    address = allowed[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{port}" if port else "")
    pinned = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    host_header = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    request = client.build_request(
        "GET",
        pinned,
        headers={**headers, "Host": host_header},
        extensions={"sni_hostname": host} if parts.scheme.lower() == "https" else {},
    )
    return request, host


def _save(response: httpx.Response, sink: BinaryIO, cap: int, deadline: float) -> int:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap and "content-encoding" not in response.headers:
        raise FetchError(f"over the size cap: {declared} bytes > ingest.fetch_max_bytes {cap}")
    size = 0
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise FetchError(f"over the size cap: more than ingest.fetch_max_bytes {cap} bytes")
        if time.monotonic() > deadline:
            raise FetchError("took longer than ingest.fetch_timeout")
        sink.write(chunk)
    return size

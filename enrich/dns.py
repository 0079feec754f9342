"""DNS for enrichment: A and AAAA with timeouts, the CNAME chain, hosts file first.

A thin layer over :class:`tocsin.net.resolver.Resolver` (the one every fetcher
shares, so a name resolves the same way for the crawl, the browser and here),
resolving many names at once in a bounded thread pool. Answers are cached by
the resolver with their TTL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tocsin.errors import ResolveError
from tocsin.net.resolver import Resolution, Resolver


@dataclass(frozen=True)
class HostAddresses:
    """A host's addresses (IPv4 first, de-duplicated, capped) or why there are none."""

    host: str
    addresses: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    source: str = ""  # literal | hosts | dns
    error: str | None = None


def _ordered(addresses: Iterable[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    return tuple(sorted(unique, key=lambda a: ipaddress.ip_address(a).version))


def resolve_one(resolver: Resolver, host: str) -> HostAddresses:
    try:
        answer: Resolution = resolver.resolve(host)
    except ResolveError as exc:
        return HostAddresses(host, error=str(exc)[:300])
    except Exception as exc:  # a resolver bug must not stop a batch
        return HostAddresses(host, error=f"{exc.__class__.__name__}: {exc}"[:300])
    return HostAddresses(host, _ordered(answer.addresses), answer.cname_chain, answer.source)


def resolve_many(
    resolver: Resolver, hosts: Iterable[str], concurrency: int
) -> dict[str, HostAddresses]:
    """Resolve every host, ``concurrency`` at a time."""
    unique = list(dict.fromkeys(hosts))
    if len(unique) <= 1:
        return {h: resolve_one(resolver, h) for h in unique}
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(unique)), thread_name_prefix="dns"
    ) as pool:
        return dict(zip(unique, pool.map(lambda h: resolve_one(resolver, h), unique), strict=True))

"""The SSRF guard inside Scrapy: resolve once, check, and connect to what was checked.

Every URL comes from an attacker, and so does every redirect and every name's
DNS answer. Three pieces share one :class:`NetPolicy` per network configuration:

- :class:`GuardedResolver`, Scrapy's ``TWISTED_DNS_RESOLVER``: the only way the
  reactor turns a name into an address. It resolves through
  :class:`tocsin.net.resolver.Resolver` (``network.hosts_file`` first), refuses
  the name when any answer is an inward address, and hands Twisted exactly one
  checked address. A rebinding answer at connection time is therefore refused
  too: whatever address a socket is opened to has passed the guard.
- ``crawler.middlewares.SsrfGuardMiddleware`` checks each request (every redirect
  hop is a new request) before it is downloaded, so a block is recorded with its
  reason and never retried; IP literals, which never reach a resolver, are
  checked there.
- the browser's proxy (``crawler.browser.proxy``) does the same for Chromium.

Blocks seen by the resolver are kept in a small log (:data:`RECENT_BLOCKS`)
because Twisted reduces a resolver failure to "no results"; the spider looks
the reason up there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
    IResolverSimple,
)
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from tocsin.config import Config, NetworkConfig
from tocsin.errors import BlockedAddress, ResolveError
from tocsin.net.guard import Guard
from tocsin.net.resolver import Resolver


class BlockLog:
    """The most recent blocks by host (bounded), for reasons Twisted would lose."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[float, BlockedAddress]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, exc: BlockedAddress) -> None:
        with self._lock:
            self._items[exc.host.lower()] = (time.monotonic(), exc)
            self._items.move_to_end(exc.host.lower())
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, host: str, max_age: float = 600.0) -> BlockedAddress | None:
        with self._lock:
            found = self._items.get(host.lower())
        if found is None or time.monotonic() - found[0] > max_age:
            return None
        return found[1]


RECENT_BLOCKS = BlockLog()


@dataclass
class NetPolicy:
    """One run's resolver and guard: which address a host may be fetched at."""

    resolver: Resolver
    guard: Guard
    blocks: BlockLog = RECENT_BLOCKS

    @classmethod
    def from_config(cls, network: NetworkConfig) -> NetPolicy:
        return cls(Resolver.from_config(network), Guard.from_config(network))

    @classmethod
    def for_config(cls, network: NetworkConfig, *, max_age: float = 0.0) -> NetPolicy:
        """The process-wide policy for this network configuration (one resolver cache).

        A new one is made when the hosts file changed since (a site moved host). The
        file is looked at again when the last look is older than ``max_age`` seconds
        (by default always): a caller asking per page (the rules) can spare the
        ``stat``, which on a busy reactor thread is a GIL hand-off each time.
        """
        key = network.model_dump_json()
        now = time.monotonic()
        with _POLICIES_LOCK:
            found = _POLICIES.get(key)
            if found is not None and now - found[2] <= max_age:
                return found[0]
        stamp = _file_stamp(network.hosts_file)
        with _POLICIES_LOCK:
            found = _POLICIES.get(key)
            if found is None or found[1] != stamp:
                found = (cls.from_config(network), stamp, now)
            else:
                found = (found[0], stamp, now)
            _POLICIES[key] = found
        return found[0]

    def is_instant(self, host: str) -> bool:
        """True when resolving ``host`` needs no network (an IP literal or a hosts-file name)."""
        name = host.lower().strip("[]").rstrip(".")
        if name in self.resolver.hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def addresses_for(self, host: str) -> tuple[str, ...]:
        """Every address of ``host``, all checked; raise BlockedAddress or ResolveError.

        A name with any inward answer is refused as a whole: mixing a public and a
        private answer is what rebinding attacks do.
        """
        resolution = self.resolver.resolve(host)
        for address in resolution.addresses:
            reason = self.guard.reason(address)
            if reason is not None:
                exc = BlockedAddress(host, address, reason)
                self.blocks.add(exc)
                raise exc
        return resolution.addresses

    def address_for(self, host: str, *, ipv4_only: bool = False) -> str:
        """The one checked address to connect to (IPv4 first)."""
        addresses = self.addresses_for(host)
        v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
        if v4:
            return v4[0]
        if ipv4_only:
            raise ResolveError(f"{host}: no IPv4 address")
        return addresses[0]

    async def address_for_async(self, host: str) -> str:
        """:meth:`address_for` without blocking an event loop on DNS.

        Lookups get their own threads: in the loop's default executor a slow
        name would hold up the pipelines' work.
        """
        if self.is_instant(host):
            return self.address_for(host)
        return await asyncio.get_running_loop().run_in_executor(
            _DNS_THREADS, self.address_for, host
        )


_DNS_THREADS = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="tocsin-dns")
# key -> (policy, the hosts file's stamp, when the stamp was taken)
_POLICIES: dict[str, tuple[NetPolicy, tuple[float, int] | None, float]] = {}


def _file_stamp(path: str) -> tuple[float, int] | None:
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime, info.st_size)


_POLICIES_LOCK = threading.Lock()


def policy_from_settings(settings: Any) -> NetPolicy:
    config = settings.get("TOCSIN_CONFIG")
    if not isinstance(config, Config):
        config = Config()
    return NetPolicy.for_config(config.network)


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - Twisted never cancels ours
        pass


@implementer(IResolverSimple, IHostnameResolver)
class GuardedResolver:
    """Scrapy's ``TWISTED_DNS_RESOLVER``: guarded answers only, one address per name."""

    def __init__(self, reactor: Any, policy: NetPolicy) -> None:
        self.reactor = reactor
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        # Scrapy passes the CrawlerProcess here (it has .settings, like a Crawler).
        return cls(reactor, policy_from_settings(crawler.settings))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)  # reactor.resolve(), connectTCP
        self.reactor.installNameResolver(self)  # HostnameEndpoint (Scrapy's HTTP/1.1 agent)

    def _lookup(self, name: str, ipv4_only: bool) -> defer.Deferred[str]:
        if self.policy.is_instant(name):
            try:
                return defer.succeed(self.policy.address_for(name, ipv4_only=ipv4_only))
            except (BlockedAddress, ResolveError) as exc:
                return defer.fail(DNSLookupError(str(exc)))
        d = deferToThreadPool(
            self.reactor,
            self.reactor.getThreadPool(),
            self.policy.address_for,
            name,
            ipv4_only=ipv4_only,
        )

        def _convert(failure: Any) -> Any:
            if failure.check(BlockedAddress, ResolveError):
                raise DNSLookupError(str(failure.value))
            return failure

        d.addErrback(_convert)
        return d

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:
        return self._lookup(name, ipv4_only=True)

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[Any]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        wants_v6 = addressTypes is None or IPv6Address in addressTypes

        def _deliver(address: str) -> None:
            if ipaddress.ip_address(address).version == 6:
                resolutionReceiver.addressResolved(IPv6Address("TCP", address, portNumber))
            else:
                resolutionReceiver.addressResolved(IPv4Address("TCP", address, portNumber))

        d = self._lookup(hostName, ipv4_only=not wants_v6)
        d.addCallback(_deliver)
        d.addErrback(lambda failure: failure.trap(DNSLookupError) and None)
        d.addBoth(lambda _: resolutionReceiver.resolutionComplete())
        return resolution

"""How ``tocsin enrich`` fetches security.txt: a lean asyncio client behind the SSRF guard.

Ten thousand sites mean some 30,000 small GETs; through Scrapy's engine each
one costs more than the fetch itself (a benchmark's 10,000 sites took three
minutes). :func:`guarded_fetcher` does the same walk (:class:`Walk`: candidates
in order, redirects by hand, at most :data:`MAX_HOPS` per candidate) with
aiohttp, and keeps the guard on every hop, three times over:

1. before each request (every redirect hop is a new request) the URL's host,
   as aiohttp will read it, is resolved and checked with the run's
   :class:`crawler.net.NetPolicy`: IP literals, which never reach a resolver,
   are refused here with their reason;
2. the connector's resolver is :class:`GuardedResolver`: it only ever hands
   aiohttp addresses that passed the guard (no cache of its own in aiohttp);
3. the socket factory refuses to open a socket to any address the guard
   refuses, whatever path led there (the last word, against rebinding).

Answers are bounded: ``enrich.securitytxt_max_bytes`` (a larger answer is a
failure, as Scrapy's ``download_maxsize`` made it), ``securitytxt_timeout`` for
the whole request, no proxies from the environment, no cookies. As with the
spider, TLS certificates are not verified: a compromised site's broken
certificate does not make its owner's contact less useful.

During a crawl, the item pipeline walks the same candidates as Scrapy requests
instead (``crawler/spiders/securitytxt.py``), through the crawl's own guard.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from crawler.net import NetPolicy
from enrich.securitytxt import Fetched, Walk
from tocsin.app import App
from tocsin.config import Config
from tocsin.errors import BlockedAddress, ResolveError
from tocsin.net.body import read_capped

log = logging.getLogger(__name__)

Targets = list[tuple[int, str, list[str]]]


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: the run's resolver (hosts file first), guarded, one address."""

    def __init__(self, policy: NetPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            address = await self.policy.address_for_async(host)
        except (BlockedAddress, ResolveError) as exc:
            raise OSError(errno.EHOSTUNREACH, str(exc)) from None
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
        ]

    async def close(self) -> None:
        return None


class _Failed(Exception):
    """One request had no HTTP answer (refused, blocked, timeout, too large...)."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class GuardedFetcher:
    """One run's client: a connection pool whose every socket passed the guard."""

    def __init__(
        self,
        policy: NetPolicy,
        *,
        max_bytes: int,
        timeout: float,
        concurrency: int,
        user_agent: str,
    ) -> None:
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.concurrency = concurrency
        self.headers = {"Accept": "text/plain", "User-Agent": user_agent}

    def _socket(self, addr_info: Any) -> socket.socket:
        """The connector's socket factory: the guard's last word on every connection."""
        family, kind, proto, _name, sockaddr = addr_info
        reason = self.policy.guard.reason(str(sockaddr[0]))
        if reason is not None:
            raise OSError(errno.EACCES, f"blocked {sockaddr[0]}: {reason}")
        return socket.socket(family, kind, proto)

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.concurrency,
            use_dns_cache=False,  # every connection asks GuardedResolver
            resolver=GuardedResolver(self.policy),
            ssl=False,  # as the spider: certificates are not verified
            keepalive_timeout=2.0,  # a site's second path reuses its connection, no more
            socket_factory=self._socket,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )

    async def get(
        self, session: aiohttp.ClientSession, url: str
    ) -> tuple[str, int, str | None, bytes]:
        """One guarded GET, no redirect followed: (url, status, Location, body)."""
        try:
            target = URL(url)
        except (ValueError, TypeError):
            raise _Failed("bad URL") from None
        host = target.raw_host
        if target.scheme not in ("http", "https") or not host:
            raise _Failed(f"scheme {target.scheme!r} or host not fetched")
        try:  # every hop: the host exactly as aiohttp will connect to it
            await self.policy.address_for_async(host)
        except BlockedAddress as exc:
            raise _Failed(f"blocked ({exc.address}: {exc.reason})") from None
        except ResolveError:
            raise _Failed("DNSLookupError") from None
        try:
            async with session.get(target, allow_redirects=False) as response:
                body = await read_capped(response, self.max_bytes)
                if body is None:
                    raise _Failed(f"answer over {self.max_bytes} bytes")
                return url, response.status, response.headers.get("Location"), body
        except TimeoutError:
            raise _Failed("TimeoutError", timed_out=True) from None
        except aiohttp.ServerTimeoutError:
            raise _Failed("TimeoutError", timed_out=True) from None
        except (aiohttp.ClientError, OSError, ValueError, UnicodeError) as exc:
            raise _Failed(exc.__class__.__name__) from None

    async def walk(self, session: aiohttp.ClientSession, walk: Walk) -> Fetched:
        step = walk.first_url()
        while not isinstance(step, Fetched):
            url = step
            try:
                url, status, location, body = await self.get(session, url)
            except _Failed as failed:
                step = walk.failure(url, failed.reason, timed_out=failed.timed_out)
            else:
                step = walk.answer(url, status, location, body)
        return step

    async def fetch_all(
        self, targets: Targets, *, on_result: Callable[[int, Fetched], None] | None = None
    ) -> dict[int, Fetched]:
        """Every site's walk, ``concurrency`` at a time; sites with the same candidates
        (the same host) are walked once."""
        walks: dict[tuple[str, ...], list[int]] = {}
        for site_id, _host, urls in targets:
            walks.setdefault(tuple(urls), []).append(site_id)
        results: dict[int, Fetched] = {}
        slots = asyncio.Semaphore(self.concurrency)

        async def one(urls: tuple[str, ...], site_ids: list[int]) -> None:
            async with slots:
                walk = Walk(site_ids[0], urls, max_bytes=self.max_bytes, timeout=self.timeout)
                try:
                    found = await self.walk(session, walk)
                except Exception as exc:  # a bug in one walk is a gap, not a lost run
                    found = Fetched("error", detail=f"{exc.__class__.__name__}: {exc}"[:300])
            for site_id in site_ids:
                results[site_id] = found
                if on_result is not None:
                    on_result(site_id, found)

        async with self.session() as session:
            await asyncio.gather(*(one(urls, ids) for urls, ids in walks.items()))
        return results


def fetch_guarded(config: Config, targets: Targets) -> dict[int, Fetched]:
    """Fetch every target's security.txt with a :class:`GuardedFetcher` on a new event loop."""
    fetcher = GuardedFetcher(
        NetPolicy.for_config(config.network),
        max_bytes=config.enrich.securitytxt_max_bytes,
        timeout=config.enrich.securitytxt_timeout.total_seconds(),
        concurrency=config.enrich.securitytxt_concurrency,
        user_agent=config.crawl.user_agent,
    )
    return asyncio.run(fetcher.fetch_all(targets))


class ProcessFetcher:
    """A :data:`enrich.service.SecurityTxtFetcher` whose large calls run in a worker process.

    Enrichment is CPU-bound in one interpreter: DNS, RDAP parsing and the database
    writes hold the GIL, and so would 30,000 HTTP exchanges. A call of at least
    ``worker_min`` targets goes to one spawned worker process (the same code and
    configuration, so the same guard), which gives the fetching a core of its own;
    smaller calls, and any call after the worker broke, run in the calling thread.
    """

    def __init__(self, config: Config, *, worker_min: int = 300) -> None:
        self.config = config
        self.worker_min = worker_min
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, targets: Targets) -> dict[int, Fetched]:
        if not targets:
            return {}
        if len(targets) >= self.worker_min:
            with self._lock:
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
                pool = self._pool
            try:
                return pool.submit(fetch_guarded, self.config, targets).result()
            except BrokenProcessPool as exc:  # killed, out of memory: fetch here instead
                log.warning("security.txt worker process failed (%s); fetching in-process", exc)
                self.worker_min = 1 << 62
        return fetch_guarded(self.config, targets)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def guarded_fetcher(app: App) -> ProcessFetcher:
    """The fetcher ``tocsin enrich`` uses: :class:`GuardedFetcher`, large calls in a worker.

    Call ``close()`` when done (``Enricher.run`` does) to stop the worker process.
    """
    return ProcessFetcher(app.config)

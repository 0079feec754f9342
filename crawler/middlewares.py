"""Downloader middlewares: the SSRF guard on every request (redirect hops included), and
retries that treat a refused connection as the answer it is."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    IgnoreRequest,
    NotConfigured,
)
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefusedError

from crawler.net import NetPolicy, policy_from_settings
from tocsin.errors import BlockedAddress, ResolveError

log = logging.getLogger("tocsin.crawl.guard")


class BlockedRequest(IgnoreRequest):
    """The guard refused this request; ``reason`` says why (it goes into the check)."""

    def __init__(self, url: str, reason: str, address: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.address = address
        super().__init__(f"blocked {url}: {reason}")


class SsrfGuardMiddleware:
    """Refuse a request whose host is, or resolves to, an inward address.

    Each redirect hop is a new request, so each is checked. The resolved
    address is put in ``request.meta["tocsin_address"]``; the connection itself
    goes through :class:`crawler.net.GuardedResolver`, which checks again, so an
    answer that changes in between (DNS rebinding) is refused there.
    """

    def __init__(self, policy: NetPolicy, stats: Any = None) -> None:
        self.policy = policy
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> SsrfGuardMiddleware:
        if not crawler.settings.get("TOCSIN_CONFIG"):
            raise NotConfigured("no tocsin configuration in the settings")
        return cls(policy_from_settings(crawler.settings), crawler.stats)

    async def process_request(self, request: Request) -> None:
        parsed = urlparse_cached(request)
        if parsed.scheme not in ("http", "https"):
            self._blocked(request, f"scheme {parsed.scheme!r} is not fetched")
        host = parsed.hostname
        if not host:
            self._blocked(request, "no host in the URL")
        try:
            address = await self.policy.address_for_async(host)
        except BlockedAddress as exc:
            self._blocked(request, f"{exc.address} is a {exc.reason}", exc.address)
        except ResolveError as exc:
            raise CannotResolveHostError(str(exc)) from None
        request.meta["tocsin_address"] = address
        return None

    def _blocked(self, request: Request, reason: str, address: str | None = None) -> None:
        if self.stats is not None:
            self.stats.inc_value("tocsin/guard/blocked")
        log.info("guard: blocked %s: %s", request.url, reason)
        raise BlockedRequest(request.url, reason, address)


class OfflineAwareRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, but a refused connection is retried ``TOCSIN_REFUSED_RETRIES`` times.

    The address was resolved and checked, and the host answered at once that nothing
    listens there: that is the "offline" verdict, which a later check revisits, not a
    transient failure worth ``crawl.retries`` more attempts. Giving up on it is logged
    at DEBUG (the verdict says it), not as an error. Everything else retries as usual.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.refused_retries = settings.getint("TOCSIN_REFUSED_RETRIES", 1)

    def process_exception(self, request: Request, exception: Exception) -> Request | None:  # type: ignore[override]
        if isinstance(exception, DownloadConnectionRefusedError | TxConnectionRefusedError):
            if request.meta.get("dont_retry", False):
                return None
            limit = request.meta.get("max_retry_times", self.max_retry_times)
            request.meta["max_retry_times"] = min(limit, self.refused_retries)
            request.meta.setdefault("give_up_log_level", "DEBUG")
            return self._retry(request, exception)
        return super().process_exception(request, exception)

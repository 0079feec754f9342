"""The security.txt spider: each site's candidates, one after the other, through the guard.

For every site it tries ``/.well-known/security.txt`` then ``/security.txt``,
on ``https://host`` first and then on the site's own origins (scheme and port),
stopping at the first answer that is a security.txt. Requests go through the
project's downloader middlewares, so the SSRF guard checks every one of them,
and redirects (at most three) are followed by hand, so each hop is a new,
checked request. Parsing is not done here: the bytes go to
:mod:`enrich.securitytxt`.

The walk itself is :class:`enrich.securitytxt.Walk`, shared with the lean
asyncio fetcher that ``tocsin enrich`` uses (``enrich/fetch.py``); the item
pipeline drives :class:`CandidateWalk` through the running crawl's engine, and
:func:`enrich.fetch.spider_fetcher` runs this spider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Response
from twisted.internet.error import TCPTimedOutError, TimeoutError

from enrich.securitytxt import Fetched, Walk

_TIMEOUTS = (TimeoutError, TCPTimedOutError)


class CandidateWalk(Walk):
    """:class:`enrich.securitytxt.Walk` speaking Scrapy requests and responses."""

    def request(self, url: str) -> Request:
        return Request(
            url,
            method="GET",
            headers={"Accept": "text/plain"},
            meta={
                "dont_redirect": True,
                "handle_httpstatus_all": True,
                "dont_retry": True,
                "download_maxsize": self.max_bytes,
                "download_timeout": self.timeout,
                "tocsin_securitytxt": self.site_id,
            },
            dont_filter=True,
            cookies={},
        )

    def _step(self, step: str | Fetched) -> Request | Fetched:
        return step if isinstance(step, Fetched) else self.request(step)

    def first(self) -> Request | Fetched:
        return self._step(self.first_url())

    def on_response(self, response: Response) -> Request | Fetched:
        location = response.headers.get(b"Location")
        return self._step(
            self.answer(
                response.url,
                response.status,
                location.decode("latin-1") if location else None,
                response.body,
            )
        )

    def on_failure(self, url: str, exc: BaseException) -> Request | Fetched:
        return self._step(
            self.failure(url, exc.__class__.__name__, timed_out=isinstance(exc, _TIMEOUTS))
        )


class SecurityTxtSpider(Spider):
    """``targets``: [(site_id, host, [candidate URLs])]; results go into ``sink``."""

    name = "securitytxt"
    # Plain Scrapy HTTP: no browser is needed, so Playwright is not started. The guard is
    # unaffected: it is the downloader middleware and the reactor's resolver.
    custom_settings = {  # noqa: RUF012
        "RETRY_ENABLED": False,
        "COOKIES_ENABLED": False,
        # Scrapy (2.13+, asyncio) starts CONCURRENT_ITEMS worker tasks for every callback's
        # output; ours yield one request at most, and 100 tasks per response cost more than
        # the fetch itself.
        "CONCURRENT_ITEMS": 2,
        "DOWNLOAD_HANDLERS": {
            "http": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
            "https": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
        },
    }

    def __init__(
        self,
        targets: list[tuple[int, str, list[str]]] | None = None,
        sink: dict[int, Fetched] | None = None,
        max_bytes: int = 32 * 1024,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets or []
        self.sink = sink if sink is not None else {}
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def start(self) -> AsyncIterator[Request]:
        for site_id, _host, urls in self.targets:
            walk = CandidateWalk(site_id, urls, max_bytes=self.max_bytes, timeout=self.timeout)
            step = walk.first()
            if isinstance(step, Fetched):
                self.sink[site_id] = step
                continue
            yield self._bind(step, walk)

    def _bind(self, request: Request, walk: CandidateWalk) -> Request:
        request.meta["tocsin_walk"] = walk
        return request.replace(callback=self.parse, errback=self.failed)

    def _advance(self, walk: CandidateWalk, step: Request | Fetched) -> Iterable[Request]:
        if isinstance(step, Fetched):
            self.sink[walk.site_id] = step
            return []
        return [self._bind(step, walk)]

    def parse(self, response: Response, **kwargs: Any) -> Iterable[Request]:
        walk: CandidateWalk = response.meta["tocsin_walk"]
        return self._advance(walk, walk.on_response(response))

    def failed(self, failure: Any) -> Iterable[Request]:
        request = failure.request
        walk: CandidateWalk = request.meta["tocsin_walk"]
        return self._advance(walk, walk.on_failure(request.url, failure.value))

"""The security.txt spider: each site's candidates, one after the other, through the guard.

For every site it tries ``/.well-known/security.txt`` then ``/security.txt``,
on ``https://host`` first and then on the site's own origins (scheme and port),
stopping at the first answer that is a security.txt. Requests go through the
project's downloader middlewares, so the SSRF guard checks every one of them,
and redirects (at most three) are followed by hand, so each hop is a new,
checked request. Parsing is not done here: the bytes go to
:mod:`enrich.securitytxt`.

Run by :func:`enrich.fetch.fetch_with_spider` (``tocsin enrich``); the item
pipeline drives the same :class:`CandidateWalk` through the running engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider
from scrapy.http import Response
from twisted.internet.error import TCPTimedOutError, TimeoutError

from enrich.securitytxt import Fetched, looks_like_securitytxt

MAX_HOPS = 3
_TIMEOUTS = (TimeoutError, TCPTimedOutError)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CandidateWalk:
    """One site's way through its candidate URLs; the same logic for spider and pipeline.

    Every origin that fails at the connection level (refused, TLS, DNS, blocked,
    timeout) is skipped for its other path. The end is ``found``; ``absent``
    when some origin answered and none had a security.txt; ``error`` when no
    origin answered at all (only timeouts), so a later run looks again.
    """

    def __init__(
        self, site_id: int, urls: Iterable[str], *, max_bytes: int, timeout: float
    ) -> None:
        self.site_id = site_id
        self.urls = list(urls)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.index = -1
        self.hops = 0
        self.dead: set[str] = set()
        self.answered = False
        self.errors: list[str] = []

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

    def first(self) -> Request | Fetched:
        return self._next()

    def _next(self) -> Request | Fetched:
        self.hops = 0
        while True:
            self.index += 1
            if self.index >= len(self.urls):
                if self.answered:
                    return Fetched("absent", detail="; ".join(self.errors[-3:]))
                return Fetched("error", detail="; ".join(self.errors[-3:]) or "no answer")
            url = self.urls[self.index]
            if _origin(url) not in self.dead:
                return self.request(url)

    def on_response(self, response: Response) -> Request | Fetched:
        self.answered = True
        status = response.status
        if 300 <= status < 400 and self.hops < MAX_HOPS:
            location = response.headers.get(b"Location")
            if location:
                target = urljoin(response.url, location.decode("latin-1").strip())
                if urlsplit(target).scheme in ("http", "https"):
                    self.hops += 1
                    return self.request(target)
        if status == 200 and looks_like_securitytxt(response.body[: self.max_bytes]):
            return Fetched("found", url=response.url, body=response.body[: self.max_bytes])
        self.errors.append(f"{response.url}: HTTP {status}")
        return self._next()

    def on_failure(self, url: str, exc: BaseException) -> Request | Fetched:
        origin = _origin(url)
        self.dead.add(origin)
        if not isinstance(exc, _TIMEOUTS):
            self.answered = True  # refused, TLS, DNS, blocked: a definite "not here"
        self.errors.append(f"{origin}: {exc.__class__.__name__}")
        return self._next()


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

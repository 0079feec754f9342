"""security.txt candidates walked as Scrapy requests, for the crawl's item pipeline.

For every site the walk tries ``/.well-known/security.txt`` then ``/security.txt``,
on ``https://host`` first and then on the site's own origins (scheme and port),
stopping at the first answer that is a security.txt. Requests go through the
project's downloader middlewares, so the SSRF guard checks every one of them,
and redirects (at most three) are followed by hand, so each hop is a new,
checked request. Parsing is not done here: the bytes go to
:mod:`enrich.securitytxt`.

The walk itself is :class:`enrich.securitytxt.Walk`, shared with the lean
asyncio fetcher that ``tocsin enrich`` uses (``enrich/fetch.py``); the item
pipeline drives :class:`CandidateWalk` through the running crawl's engine, so
those requests pass the crawl's downloader middlewares and guard.
"""

from __future__ import annotations

from scrapy import Request
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

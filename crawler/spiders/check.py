"""The ``check`` spider: triage every due URL with Scrapy, confirm HTML in Chromium.

One visit per URL (:class:`Visit`) goes through:

1. **triage**: a plain fetch; redirects are followed by hand so each hop is
   recorded and guarded, with loop detection and ``crawl.max_redirects``;
2. **routing** on the final answer: ``offline`` (no such name, refused,
   unreachable, 404 or 410), ``payload`` (anything that is not HTML, by magic
   bytes), ``browser`` (HTML), ``blocked`` (the SSRF guard) or ``error``
   (timeouts, size caps, gzip bombs, redirect loops, hostile pages);
3. for HTML, two **cloaking** fetches (as Googlebot, and as a visitor from a
   search results page) and the **browser** visit, in parallel; the browser
   visits again as a phone and from a search engine while nothing malicious
   was seen (:mod:`crawler.browser.conditions`);
4. one :class:`~crawler.items.CheckItem` to the pipelines (verdict, evidence,
   store).

Due URLs are claimed from the store in batches (``crawl.batch_size``): each
claim leases them to this crawl (``store.leases``), so another crawl, here or on
another machine, skips them; the spider extends its leases while it runs and
gives back the unchecked ones when it closes. Scrapy only pulls the next start
request when it has room, so memory stays bounded however many URLs are due.
``batch`` (a queued job's URLs) claims only among those. ``url_ids``
(re-checks) visits exactly those URLs whatever their state, and claims nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from sqlalchemy import select
from twisted.internet import error as txerror
from twisted.python.failure import Failure

from crawler.browser.conditions import ConditionRun, Outcome, provisional_verdict
from crawler.browser.handler import PageTimeout, close_quietly
from crawler.browser.profiles import Condition
from crawler.browser.recorder import Recorder
from crawler.items import CheckItem
from crawler.middlewares import BlockedRequest
from crawler.net import RECENT_BLOCKS
from crawler.runner import run_context
from crawler.settings import BROWSER_SLOT
from crawler.triage import filename_from, sniff
from enrich.origin import origin_hints
from store import leases
from store.models import Url

log = logging.getLogger("tocsin.crawl")

MAX_HTML_KEPT = 2 * 1024**2  # of the plain fetch, for comparison with the browser's copy
_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@dataclass
class Visit:
    """One URL's way through triage, cloaking fetches and the browser."""

    item: CheckItem
    seen: list[str] = field(default_factory=list)  # URLs of the redirect chain so far
    pending: int = 0  # parallel parts still running (cloaking fetches, browser)
    recorder: Recorder | None = None
    browser_attempts: int = 0
    done: bool = False
    conditions: ConditionRun | None = None


class CheckSpider(Spider):
    """Triage, confirm and (with ``url_ids``) re-check URLs from the store."""

    name = "check"

    def __init__(
        self,
        kind: str = "triage",
        url_ids: list[int] | str | None = None,
        limit: int | str | None = None,
        targets: list[str] | None = None,
        batch: list[int] | None = None,
        job: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        # A queued job's URLs (tocsin worker): those still due are claimed, as due URLs
        # are without it; ``job`` names the job, whose retry takes back its leases.
        self.batch = list(batch) if batch is not None else None
        self.job = job
        self.lease_token = leases.new_token()
        self._keeper: asyncio.Future[None] | None = None
        self.targets = list(targets) if targets else None  # URLs not in the store (rules test)
        if isinstance(url_ids, str):  # scrapy crawl check -a url_ids=1,2,3
            url_ids = [int(x) for x in url_ids.split(",") if x.strip()]
        self.url_ids = list(url_ids) if url_ids else None
        self.limit = int(limit) if limit not in (None, "") else None
        self.queued = 0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> CheckSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.ctx = run_context(crawler)
        spider.app = spider.ctx.app
        spider.config = spider.app.config
        return spider

    # ------------------------------------------------------------------ start

    @property
    def claims(self) -> bool:
        """Whether this crawl leases its URLs (due ones; not given ids or targets)."""
        return self.url_ids is None and self.targets is None

    async def start(self) -> AsyncIterator[Any]:
        if self.claims:
            self._keeper = asyncio.ensure_future(self._keep_leases())
        lease = self.lease_token if self.claims else None
        async for batch in self._batches():
            for url_id, url in batch:
                if self.limit is not None and self.queued >= self.limit:
                    return
                self.queued += 1
                for out in self._begin(url_id, url, lease):
                    yield out

    async def _keep_leases(self) -> None:
        """Extend this crawl's leases while it runs: a third of their term, each time."""
        term = timedelta(seconds=self.config.crawl.lease_seconds)
        while True:
            await asyncio.sleep(term.total_seconds() / 3)
            try:
                await asyncio.to_thread(leases.extend, self.app.db, self.lease_token, term)
            except Exception:  # the store is away: try again next time, the term is long
                log.warning("cannot extend the crawl's leases", exc_info=True)

    def closed(self, reason: str) -> None:
        """Every check is stored by now: give back the leases of URLs left unchecked."""
        if self._keeper is not None:
            self._keeper.cancel()
        if self.claims:
            with contextlib.suppress(Exception):  # else they lapse after crawl.lease_seconds
                leases.release(self.app.db, self.lease_token)

    async def _batches(self) -> AsyncIterator[list[tuple[int, str]]]:
        size = self.config.crawl.batch_size
        if self.targets is not None:
            yield [(0, url) for url in self.targets]
            return
        if self.url_ids is not None:
            for i in range(0, len(self.url_ids), size):
                chunk = self.url_ids[i : i + size]
                yield await asyncio.to_thread(self._load_ids, chunk)
            return
        while self.limit is None or self.queued < self.limit:
            want = size if self.limit is None else min(size, self.limit - self.queued)
            batch = await asyncio.to_thread(self._claim, want)
            if not batch:
                return
            yield batch

    def _load_ids(self, ids: list[int]) -> list[tuple[int, str]]:
        with self.app.db.session() as session:
            rows = session.execute(select(Url.id, Url.url).where(Url.id.in_(ids)).order_by(Url.id))
            return [(r[0], r[1]) for r in rows]

    def _claim(self, size: int) -> list[tuple[int, str]]:
        """Lease the next due URLs (of the job's batch, for a queued job)."""
        return leases.claim(
            self.app.db,
            self.lease_token,
            due_at=self.app.clock.now(),
            limit=size,
            lease=timedelta(seconds=self.config.crawl.lease_seconds),
            job=self.job,
            among=self.batch,
        )

    def _begin(self, url_id: int, url: str, lease: str | None = None) -> Iterator[Any]:
        item = CheckItem(url_id=url_id, url=url, kind=self.kind, started_at=self.app.clock.now())
        item.lease = lease
        visit = Visit(item)
        try:
            yield self._triage_request(visit, url, priority=0)
        except ValueError as exc:  # a URL Scrapy refuses outright
            yield from self._finish(visit, "error", f"cannot be fetched: {exc}", error=str(exc))

    # ------------------------------------------------------------------ triage

    def _triage_request(self, visit: Visit, url: str, *, priority: int) -> Request:
        visit.seen.append(url)
        return Request(
            url,
            callback=self.on_triage,
            errback=self.on_triage_error,
            dont_filter=True,
            priority=priority,
            headers={"Accept": _ACCEPT, "Accept-Language": "en-US,en;q=0.9"},
            meta={"tocsin_visit": visit, "handle_httpstatus_all": True, "dont_redirect": True},
        )

    def on_triage(self, response: Response) -> Iterator[Any]:
        visit: Visit = response.meta["tocsin_visit"]
        item = visit.item
        content_type = response.headers.get("Content-Type", b"").decode("latin-1", "replace")
        hop = {
            "url": response.url,
            "status": response.status,
            "ip": str(response.ip_address) if response.ip_address else None,
            "content_type": content_type[:200] or None,
            "kind": "http",
        }
        if hints := origin_hints(response.headers):  # a CDN's origin, named by a header
            hop["origin"] = hints
        item.redirect_chain.append(hop)
        location = response.headers.get("Location")
        if 300 <= response.status < 400 and location:
            target = urljoin(response.url, location.decode("latin-1", "replace").strip())
            hop["location"] = target
            if urlsplit(target).scheme not in ("http", "https"):
                item.http_status = response.status
                yield from self._finish(
                    visit,
                    "error",
                    f"redirect to a non-web URL {target[:200]}",
                    error="bad redirect",
                )
                return
            if target in visit.seen:
                loop = " -> ".join([*visit.seen[visit.seen.index(target) :], target])
                item.http_status = response.status
                yield from self._finish(
                    visit, "error", f"redirect loop: {loop[:500]}", error="redirect loop"
                )
                return
            if len(visit.seen) > self.config.crawl.max_redirects:
                item.http_status = response.status
                yield from self._finish(
                    visit,
                    "error",
                    f"more than {self.config.crawl.max_redirects} redirects",
                    error="too many redirects",
                )
                return
            yield self._triage_request(visit, target, priority=10)
            return
        yield from self._route(visit, response, content_type)

    def _route(self, visit: Visit, response: Response, content_type: str) -> Iterator[Any]:
        item = visit.item
        item.http_status = response.status
        item.final_url = response.url
        item.content_type = content_type[:200] or None
        if response.status in (404, 410):
            yield from self._finish(visit, "offline", f"HTTP {response.status}")
            return
        disposition = response.headers.get("Content-Disposition")
        name = filename_from(response.url, disposition)
        body = response.body
        found = sniff(body, content_type, response.url, name)
        item.meta["sniffed"] = {
            **found.as_meta(),
            "size": len(body),
            "attachment": bool(disposition and b"attachment" in disposition.lower()),
        }
        if response.status >= 400 and not found.is_html and not found.is_payload:
            yield from self._finish(visit, "offline", f"HTTP {response.status}, no content")
            return
        if not found.is_html:
            item.payload = body
            item.payload_type = found.kind
            item.payload_name = name
            declared = f", served as {found.declared}" if found.declared else ""
            yield from self._finish(visit, "payload", f"{found.label} by magic bytes{declared}")
            return
        item.served_html = body[:MAX_HTML_KEPT].decode(
            getattr(response, "encoding", None) or "utf-8", "replace"
        )
        if not self.config.browser.enabled:
            yield from self._finish(visit, "browser-skipped", "HTML page; the browser is disabled")
            return
        item.route = "browser"
        item.route_reason = f"HTML page (HTTP {response.status})"
        if self.config.crawl.cloaking_check:
            crawl = self.config.crawl
            visit.pending += 2
            yield self._variant_request(visit, "bot", {"User-Agent": crawl.bot_user_agent})
            yield self._variant_request(visit, "referer", {"Referer": crawl.search_referer})
        visit.pending += 1
        visit.conditions = ConditionRun.for_config(self.config)
        yield self._browser_request(visit)

    def on_triage_error(self, failure: Failure) -> Iterator[Any]:
        visit: Visit = failure.request.meta["tocsin_visit"]
        route, reason, error = classify_failure(failure, self.config.crawl.max_body)
        hop = {"url": failure.request.url, "status": None, "error": reason, "kind": "http"}
        visit.item.redirect_chain.append(hop)
        if route == "blocked":
            visit.item.blocked.append({"url": failure.request.url, "reason": reason})
        if len(visit.seen) > 1:
            reason = f"{reason} (at redirect hop {len(visit.seen) - 1})"
        yield from self._finish(visit, route, reason, error=error)

    # ------------------------------------------------------------------ cloaking

    def _variant_request(self, visit: Visit, name: str, headers: dict[str, str]) -> Request:
        return Request(
            visit.item.final_url or visit.item.url,
            callback=self.on_variant,
            errback=self.on_variant_error,
            dont_filter=True,
            priority=20,
            headers={"Accept": _ACCEPT, **headers},
            cookies={},
            meta={
                "tocsin_visit": visit,
                "tocsin_variant": name,
                "handle_httpstatus_all": True,
                "dont_redirect": True,
                "dont_merge_cookies": True,
                "max_retry_times": 1,
            },
        )

    def on_variant(self, response: Response) -> Iterator[Any]:
        visit: Visit = response.meta["tocsin_visit"]
        location = response.headers.get("Location")
        visit.item.variants[response.meta["tocsin_variant"]] = {
            "status": response.status,
            "location": urljoin(response.url, location.decode("latin-1", "replace"))
            if location
            else None,
            "html": response.body[:MAX_HTML_KEPT].decode(
                getattr(response, "encoding", None) or "utf-8", "replace"
            ),
        }
        yield from self._part_done(visit)

    def on_variant_error(self, failure: Failure) -> Iterator[Any]:
        visit: Visit = failure.request.meta["tocsin_visit"]
        _, reason, _ = classify_failure(failure, self.config.crawl.max_body)
        visit.item.variants[failure.request.meta["tocsin_variant"]] = {"error": reason}
        yield from self._part_done(visit)

    # ------------------------------------------------------------------ browser

    def _browser_request(self, visit: Visit) -> Request:
        browser = self.config.browser
        visit.browser_attempts += 1
        visit.recorder = Recorder(self.config, visit.item.url, self.app.clock.now())
        condition = visit.conditions.current if visit.conditions else Condition("desktop")
        goto: dict[str, Any] = {
            "wait_until": "domcontentloaded",
            "timeout": browser.navigation_timeout.total_seconds() * 1000,
        }
        if condition.referer:
            goto["referer"] = condition.referer
        context_kwargs: dict[str, Any] = {
            # viewport, screen, touch and user agent: crawler.browser.profiles
            "tocsin_profile": condition.profile,
            "locale": browser.locale,
            "timezone_id": browser.timezone,
            "ignore_https_errors": True,
            "accept_downloads": True,
            "service_workers": "block",
            "java_script_enabled": True,
        }
        return Request(
            visit.item.url,
            callback=self.on_browser,
            errback=self.on_browser_error,
            dont_filter=True,
            # A further condition's visit goes before new pages: the URL is half done.
            priority=40 if visit.conditions and visit.conditions.outcomes else 30,
            meta={
                "tocsin_visit": visit,
                "download_slot": BROWSER_SLOT,
                "dont_retry": True,
                "playwright": True,
                "playwright_include_page": True,
                "playwright_context": f"visit-{uuid.uuid4().hex}",
                "playwright_context_kwargs": context_kwargs,
                "playwright_page_init_callback": visit.recorder.attach,
                "playwright_page_goto_kwargs": goto,
                "tocsin_deadline": browser.page_timeout.total_seconds(),
                "tocsin_started": time.monotonic(),
            },
        )

    async def on_browser(self, response: Response) -> AsyncIterator[Any]:
        visit: Visit = response.meta["tocsin_visit"]
        page = response.meta.get("playwright_page")
        recorder = visit.recorder
        assert recorder is not None
        left = self.config.browser.page_timeout.total_seconds() - (
            time.monotonic() - response.meta["tocsin_started"]
        )
        problem: str | None = None
        crashed = False
        try:
            await asyncio.wait_for(recorder.finish(page), max(left, 1.0))
        except TimeoutError:
            limit = self.config.browser.page_timeout.total_seconds()
            problem = recorder.hostile_reason() or f"the page did not settle within {limit:.0f}s"
        except Exception as exc:
            problem = recorder.hostile_reason() or f"browser: {_short(exc)}"
            crashed = _is_crash(exc)
        finally:
            if page is not None:
                await close_quietly(page)
        if crashed or recorder.crashed:
            async for out in self._retry_browser(visit, problem or "the renderer crashed"):
                yield out
            return
        problem = problem or recorder.hostile_reason()
        async for out in self._visited(visit, recorder, problem):
            yield out

    async def _visited(
        self, visit: Visit, recorder: Recorder, problem: str | None
    ) -> AsyncIterator[Any]:
        """One condition's visit is over: try the next condition, or settle the item."""
        run = visit.conditions
        result, blobs = recorder.result(), recorder.blobs()
        if run is None:  # no plan (a visit not started by _route)
            run = visit.conditions = ConditionRun(self.config, [Condition("desktop")])
        verdict = "error" if problem else "unjudged"
        if not problem and run.worth_judging(result):
            verdict = await provisional_verdict(self.config, visit.item, result)
        run.outcomes.append(
            Outcome(run.current, result, blobs, problem, verdict, result.get("elapsed_ms", 0))
        )
        if run.next_condition() is not None:
            visit.browser_attempts = 0
            yield self._browser_request(visit)
            return
        kept = run.apply(visit.item)
        if kept.problem:
            visit.item.error = kept.problem
            visit.item.route = "error"
            visit.item.route_reason = kept.problem
        for out in self._part_done(visit):
            yield out

    async def on_browser_error(self, failure: Failure) -> AsyncIterator[Any]:
        visit: Visit = failure.request.meta["tocsin_visit"]
        page = failure.request.meta.get("playwright_page")
        if page is not None:
            await close_quietly(page)
        recorder = visit.recorder
        exc = failure.value
        reason = (recorder.hostile_reason() if recorder else None) or _browser_failure(
            exc, self.config.browser.navigation_timeout.total_seconds()
        )
        if (recorder is not None and recorder.crashed) or _is_crash(exc):
            async for out in self._retry_browser(visit, reason):
                yield out
            return
        if recorder is not None:
            async for out in self._visited(visit, recorder, reason):
                yield out
            return
        visit.item.error = reason
        visit.item.route = "error"
        visit.item.route_reason = reason
        for out in self._part_done(visit):
            yield out

    async def _retry_browser(self, visit: Visit, reason: str) -> AsyncIterator[Any]:
        """A crashed browser or renderer: restart (scrapy-playwright does) and retry once."""
        if visit.browser_attempts < 2:
            log.info("browser crashed on %s (%s); retrying once", visit.item.url, reason)
            visit.item.meta["browser_retry"] = reason
            yield self._browser_request(visit)
            return
        run = visit.conditions
        if run is not None and run.outcomes and visit.recorder is not None:
            # A later condition's visit: the earlier ones still stand.
            async for out in self._visited(visit, visit.recorder, f"crashed twice: {reason}"):
                yield out
            return
        visit.item.error = f"browser crashed twice: {reason}"
        visit.item.route = "error"
        visit.item.route_reason = visit.item.error
        for out in self._part_done(visit):
            yield out

    # ------------------------------------------------------------------ the end

    def _part_done(self, visit: Visit) -> Iterator[Any]:
        visit.pending -= 1
        if visit.pending <= 0 and not visit.done:
            item = visit.item
            yield from self._finish(visit, item.route or "browser", item.route_reason or "")

    def _finish(
        self, visit: Visit, route: str, reason: str, *, error: str | None = None
    ) -> Iterator[CheckItem]:
        if visit.done:
            return
        visit.done = True
        item = visit.item
        item.route = route
        item.route_reason = reason
        if error or route in ("error", "blocked"):
            item.error = item.error or error or reason
        item.finished_at = self.app.clock.now()
        yield item


def classify_failure(failure: Failure, max_body: int) -> tuple[str, str, str | None]:
    """(route, reason, error) for a failed plain fetch."""
    exc = failure.value
    host = urlsplit(failure.request.url).hostname or ""
    if isinstance(exc, BlockedRequest):
        return "blocked", f"blocked by the SSRF guard: {exc.reason}", "blocked"
    if isinstance(exc, CannotResolveHostError | txerror.DNSLookupError):
        block = RECENT_BLOCKS.get(host)
        if block is not None:
            return (
                "blocked",
                f"blocked by the SSRF guard at connection time: {block.address} is a "
                f"{block.reason} (the name's answer changed: DNS rebinding?)",
                "blocked",
            )
        return "offline", f"DNS: {_short(exc)}", None
    if isinstance(exc, DownloadConnectionRefusedError | txerror.ConnectionRefusedError):
        return "offline", "connection refused", None
    if isinstance(exc, txerror.NoRouteError | txerror.TCPTimedOutError):
        return "offline", f"host unreachable ({exc.__class__.__name__})", None
    if isinstance(exc, txerror.ConnectError) and not isinstance(exc, txerror.ConnectionLost):
        return "offline", f"cannot connect: {_short(exc)}", None
    if isinstance(exc, DownloadTimeoutError | txerror.TimeoutError | TimeoutError):
        return "error", f"timed out: the server answered too slowly ({_short(exc)})", "timeout"
    if isinstance(exc, DownloadCancelledError):
        return "error", f"body larger than {max_body} bytes (cut)", "body too large"
    if isinstance(exc, IgnoreRequest) and "decompression" in str(exc):
        return (
            "error",
            f"body larger than {max_body} bytes once decompressed (a decompression bomb?)",
            "decompression bomb",
        )
    if isinstance(exc, IgnoreRequest) and "max size" in str(exc).lower():
        return "error", f"body larger than {max_body} bytes", "body too large"
    if isinstance(exc, ResponseDataLossError | DownloadFailedError):
        return "error", f"broken response: {_short(exc)}", "broken response"
    return "error", f"{exc.__class__.__name__}: {_short(exc)}", exc.__class__.__name__


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:limit]


def _is_crash(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("target crashed", "browser has been closed", "browser closed", "crashed")
    ) and not isinstance(exc, PageTimeout)


def _browser_failure(exc: BaseException, nav_timeout: float) -> str:
    if isinstance(exc, PageTimeout):
        return f"browser: {exc} (a script that never yields?)"
    text = _short(exc)
    if "Timeout" in text or isinstance(exc, TimeoutError):
        return (
            f"browser: the page did not load within {nav_timeout:.0f}s "
            "(a script that never yields?)"
        )
    with contextlib.suppress(Exception):
        if "net::ERR_" in text:
            return f"browser: {text[text.index('net::ERR_') :].split()[0]}"
    return f"browser: {text}"

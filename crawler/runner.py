"""Running spiders from the tocsin commands, any number of times in one process.

Twisted's reactor cannot be restarted, and ``tocsin run`` chains crawl, enrich
(security.txt through the guarded fetcher) and notify (the last-minute re-check)
in one process. So the reactor (Twisted's asyncio reactor) runs once, in a
daemon thread started on first use, and each :func:`run_spiders` call runs its
spiders on it one after the other and waits for them. Ctrl-C stops the crawl
gracefully; a second Ctrl-C gives up waiting.

Scrapy components find the run's :class:`~tocsin.app.App` (configuration, clock,
database) and its callbacks through :func:`run_context`. Under a plain
``scrapy crawl check`` there is no runner; the context is then built from the
settings (``TOCSIN_CONFIG``, ``TOCSIN_NOW``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scrapy import Spider

from crawler.items import CheckOutcome, Dropped
from crawler.net import GuardedResolver, NetPolicy
from crawler.settings import scrapy_settings
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import Config
from tocsin.errors import TocsinError

log = logging.getLogger("tocsin.crawl")

SpiderSpec = tuple[type[Spider], dict[str, Any]]


@dataclass
class RunContext:
    """What one run's Scrapy components share: the app, and where results go."""

    app: App
    on_check: Callable[[CheckOutcome], None] | None = None
    outcomes: dict[int, CheckOutcome] = field(default_factory=dict)  # by url_id
    items: list[Any] = field(default_factory=list)  # CheckItems kept, not stored (visit())
    lock: threading.Lock = field(default_factory=threading.Lock)
    dropped: list[Dropped] = field(default_factory=list)  # lease taken over: not stored

    def drop(self, dropped: Dropped) -> None:
        """Called by the check pipeline for a check the store dropped (its lease was lost)."""
        with self.lock:
            self.dropped.append(dropped)

    def report(self, outcome: CheckOutcome) -> None:
        """Called by the check pipeline once a check is committed."""
        with self.lock:
            self.outcomes[outcome.url_id] = outcome
        if self.on_check is not None:
            try:
                self.on_check(outcome)
            except Exception:  # a progress bar must never break a crawl
                log.exception("progress callback failed")


_RUNS: dict[str, RunContext] = {}


def run_context(crawler: Any) -> RunContext:
    """The run a crawler belongs to (built from its settings under ``scrapy crawl``)."""
    key = crawler.settings.get("TOCSIN_RUN_KEY")
    if key and key in _RUNS:
        return _RUNS[key]
    ctx = getattr(crawler, "_tocsin_context", None)
    if ctx is None:
        config = crawler.settings.get("TOCSIN_CONFIG")
        if not isinstance(config, Config):
            config = Config()
        now = crawler.settings.get("TOCSIN_NOW") or None
        ctx = RunContext(App(preset=config, clock=Clock.at(now)))
        crawler._tocsin_context = ctx
    return ctx


@dataclass
class CrawlResult:
    """How one spider's run went."""

    spider: str
    finish_reason: str | None
    stats: dict[str, Any]


@dataclass
class CheckSummary:
    """What :func:`check_urls` found: one outcome per URL that could be checked."""

    outcomes: dict[int, CheckOutcome]
    missing: list[int]  # asked for but not checked (unknown id, or the crawl was stopped)

    @property
    def counts(self) -> Counter[str]:
        return Counter(o.verdict for o in self.outcomes.values())

    @property
    def errors(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes.values() if o.verdict == "error"]


class _ReactorThread:
    """Twisted's asyncio reactor, run once in a daemon thread for the whole process."""

    _instance: _ReactorThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.reactor: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="tocsin-reactor", daemon=True)
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            raise TocsinError(f"cannot start the crawler's event loop: {self._error}")
        atexit.register(self.stop)

    @classmethod
    def get(cls) -> _ReactorThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _run(self) -> None:
        try:
            from scrapy.utils.reactor import install_reactor, is_asyncio_reactor_installed
            from twisted.internet.error import ReactorAlreadyInstalledError

            try:
                install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
            except ReactorAlreadyInstalledError:
                if not is_asyncio_reactor_installed():
                    raise
            from twisted.internet import reactor

            if reactor.running:
                raise RuntimeError("a Twisted reactor is already running in this process")
            self.reactor = reactor
            self.loop = reactor._asyncioEventloop
            asyncio.set_event_loop(self.loop)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        reactor.callWhenRunning(self._ready.set)
        reactor.run(installSignalHandlers=False)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.reactor is not None and self.reactor.running:
            with contextlib.suppress(Exception):
                self.reactor.callFromThread(self.reactor.stop)
            self.thread.join(timeout=10)


def _wait(reactor_thread: _ReactorThread, future: concurrent.futures.Future[Any], stop: Any) -> Any:
    """Wait for ``future``; the first Ctrl-C stops the crawl gracefully."""
    interrupted = False
    while True:
        try:
            return future.result(timeout=0.5)
        except concurrent.futures.TimeoutError:
            continue
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            log.warning("interrupted: stopping the crawl (Ctrl-C again to give up)")
            reactor_thread.submit(stop())


async def _run_all(
    settings: Any, specs: Sequence[SpiderSpec], active: list[Any]
) -> list[CrawlResult]:
    from scrapy.crawler import AsyncCrawlerRunner
    from twisted.internet import reactor

    config: Config = settings["TOCSIN_CONFIG"]
    # The reactor's resolver is process-wide: install this run's policy for its duration.
    GuardedResolver(reactor, NetPolicy.for_config(config.network)).install_on_reactor()
    reactor.getThreadPool().adjustPoolsize(maxthreads=settings.getint("REACTOR_THREADPOOL_MAXSIZE"))
    results = []
    for spider_cls, kwargs in specs:
        runner = AsyncCrawlerRunner(settings)
        crawler = runner.create_crawler(spider_cls)
        active.append(crawler)
        try:
            await runner.crawl(crawler, **kwargs)
        finally:
            active.remove(crawler)
        stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
        results.append(
            CrawlResult(
                spider=spider_cls.name or spider_cls.__name__,
                finish_reason=stats.get("finish_reason"),
                stats=stats,
            )
        )
        if stats.get("finish_reason") == "shutdown":
            break
    return results


def run_spiders(
    app: App,
    specs: Iterable[SpiderSpec],
    *,
    on_check: Callable[[CheckOutcome], None] | None = None,
    settings: dict[str, Any] | None = None,
    ctx: RunContext | None = None,
) -> list[CrawlResult]:
    """Run ``[(SpiderCls, kwargs), ...]`` one after the other and wait for them.

    Callable any number of times per process. ``on_check`` is called (from a
    worker thread) after each check is stored; ``settings`` overrides Scrapy
    settings for this run (benchmarks, tests); ``ctx`` is the run's context when
    the caller wants what its components leave there.
    """
    specs = list(specs)
    key = uuid.uuid4().hex
    ctx = ctx or RunContext(app, on_check=on_check)
    _RUNS[key] = ctx
    scrapy = scrapy_settings(
        app.config,
        TOCSIN_RUN_KEY=key,
        TOCSIN_NOW=app.clock.frozen.isoformat() if app.clock.frozen else "",
        **(settings or {}),
    )
    if "ITEM_PIPELINES" not in (settings or {}):  # the store pipelines: open it first
        app.db  # noqa: B018 - open (and on first use create) the store before the crawl starts
    reactor_thread = _ReactorThread.get()
    active: list[Any] = []

    async def stop() -> None:
        for crawler in list(active):
            with contextlib.suppress(Exception):
                await crawler.stop_async()

    try:
        future = reactor_thread.submit(_run_all(scrapy, specs, active))
        return _wait(reactor_thread, future, stop)
    finally:
        _RUNS.pop(key, None)


def on_reactor(coro: Any, timeout: float) -> Any:
    """Run ``coro`` on the crawl's event loop and wait for its result (teardown of
    what crawls left running there, such as a kept browser)."""
    return _ReactorThread.get().submit(coro).result(timeout)


def crawl_due(
    app: App,
    *,
    limit: int | None = None,
    on_check: Callable[[CheckOutcome], None] | None = None,
    settings: dict[str, Any] | None = None,
    ctx: RunContext | None = None,
) -> tuple[dict[int, CheckOutcome], list[CrawlResult]]:
    """``tocsin crawl``: check every URL that is due (at most ``limit``).

    ``ctx``: the run's context, when the caller wants what the crawl leaves there
    besides the outcomes (the checks the store dropped, ``RunContext.dropped``).
    """
    from crawler.spiders.check import CheckSpider

    outcomes: dict[int, CheckOutcome] = {}

    def collect(outcome: CheckOutcome) -> None:
        outcomes[outcome.url_id] = outcome
        if on_check is not None:
            on_check(outcome)

    run = ctx or RunContext(app)
    run.on_check = collect
    results = run_spiders(
        app,
        [(CheckSpider, {"kind": "triage", "limit": limit})],
        settings=settings,
        ctx=run,
    )
    return outcomes, results


def check_urls(
    app: App,
    url_ids: Iterable[int],
    kind: str = "recheck",
    *,
    on_check: Callable[[CheckOutcome], None] | None = None,
) -> CheckSummary:
    """Visit exactly these URLs now and store their checks (the notifier's re-checks).

    ``kind`` is stored on each check (``recheck``, ``lastminute``...). The verdicts
    are in the returned summary; resolving or escalating incidents is the caller's
    decision.
    """
    from crawler.spiders.check import CheckSpider

    ids = sorted(set(url_ids))
    if not ids:
        return CheckSummary({}, [])
    outcomes: dict[int, CheckOutcome] = {}

    def collect(outcome: CheckOutcome) -> None:
        outcomes[outcome.url_id] = outcome
        if on_check is not None:
            on_check(outcome)

    run_spiders(app, [(CheckSpider, {"kind": kind, "url_ids": ids})], on_check=collect)
    return CheckSummary(outcomes, [i for i in ids if i not in outcomes])


class KeepItems:
    """An item pipeline that keeps each check in the run instead of storing it."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    @classmethod
    def from_crawler(cls, crawler: Any) -> KeepItems:
        return cls(run_context(crawler))

    def process_item(self, item: Any) -> Any:
        with self.ctx.lock:
            self.ctx.items.append(item)
        return item


def visit(app: App, urls: Sequence[str]) -> list[Any]:
    """Crawl ``urls`` as ``tocsin crawl`` does (guard, triage, Chromium) and return their
    ``CheckItem``s unjudged and unstored: nothing is written to the store
    (``tocsin rules test``)."""
    from crawler.spiders.check import CheckSpider

    ctx = RunContext(app)
    run_spiders(
        app,
        [(CheckSpider, {"kind": "test", "targets": list(urls)})],
        settings={"ITEM_PIPELINES": {f"{__name__}.KeepItems": 300}},
        ctx=ctx,
    )
    return ctx.items

"""The enrich hand-off: enrich a site right after the crawl confirmed it malicious.

Runs after ``pipelines.checks`` (whose worker created the site and its incident). Each
malicious check's site is enriched in the background while the crawl goes on:
security.txt is fetched through the running engine (so through the same
downloader middlewares and SSRF guard as every other request), then the rest
of enrichment (DNS, pyasn, RDAP, contacts, ladders) runs in a worker thread
with the same :class:`enrich.service.Enricher` that ``tocsin enrich`` uses.
A site is enriched once per crawl, and only when it is due; whatever fails is
a gap that ``tocsin enrich`` fills later. The spider is kept open until the
pending enrichments are done.

Settings: ``enrich.in_crawl`` (on by default) switches it off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from sqlalchemy import select

from crawler.items import CheckItem
from crawler.spiders.securitytxt import CandidateWalk
from enrich.securitytxt import Fetched, candidate_urls
from enrich.service import Enricher
from store.models import Site, Url

log = logging.getLogger("tocsin.enrich")


class EnrichPipeline:
    def __init__(self, crawler: Any, app: Any) -> None:
        self.crawler = crawler
        self.app = app
        self.config = app.config
        self.enricher: Enricher | None = None
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.seen: set[int] = set()
        self.enriched = 0
        self.partial = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> EnrichPipeline:
        from crawler.runner import run_context

        if not crawler.settings.get("TOCSIN_CONFIG"):
            raise NotConfigured("no tocsin configuration in the settings")
        app = run_context(crawler).app
        if not app.config.enrich.in_crawl:
            raise NotConfigured("enrich.in_crawl is off")
        pipeline = cls(crawler, app)
        crawler.signals.connect(pipeline.spider_idle, signal=signals.spider_idle)
        return pipeline

    def open_spider(self) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tocsin-enrich")

    def spider_idle(self) -> None:
        """Keep the spider open while enrichments still need the engine."""
        if self.tasks:
            raise DontCloseSpider

    async def close_spider(self) -> None:
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
        if self.enriched and self.crawler.stats:
            self.crawler.stats.set_value("tocsin/enrich/sites", self.enriched)
            self.crawler.stats.set_value("tocsin/enrich/partial", self.partial)

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, CheckItem) and item.verdict == "malicious":
            task = asyncio.ensure_future(self._enrich(item))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return item

    async def _in_thread(self, func: Any, *args: Any) -> Any:
        if self.executor is None:
            self.open_spider()
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def _site_for(self, url_id: int) -> tuple[int, str, list[str]] | None:
        """The check's site, if it is due for enrichment: (id, host, origins)."""
        now = self.app.clock.now()
        if self.enricher is None:
            self.enricher = Enricher(self.config, self.app.db, now)
        with self.app.db.session() as session:
            site_id = session.scalar(select(Url.site_id).where(Url.id == url_id))
            if site_id is None or site_id in self.seen:
                return None
            self.seen.add(site_id)
            if not self.enricher.due_site_ids(session, among=[site_id]):
                return None
            host = session.scalar(select(Site.host).where(Site.id == site_id))
            origins = list(session.scalars(select(Url.url).where(Url.site_id == site_id).limit(5)))
        return site_id, host, origins

    async def _enrich(self, item: CheckItem) -> None:
        try:
            found = await self._in_thread(self._site_for, item.url_id)
            if found is None:
                return
            site_id, host, origins = found
            fetched: dict[int, Fetched] = {}
            if self.config.enrich.securitytxt:
                fetched[site_id] = await self._securitytxt(site_id, host, origins)
            reports = await self._in_thread(self._run, site_id, fetched)
            for report in reports:
                self.enriched += 1
                self.partial += report.state != "done"
        except Exception:  # enrichment must never break the crawl; tocsin enrich retries
            log.exception("enriching the site of %s failed", item.url)

    def _run(self, site_id: int, fetched: dict[int, Fetched]) -> list[Any]:
        assert self.enricher is not None
        self.enricher.set_now(self.app.clock.now())  # in the worker thread, between batches
        return self.enricher.enrich_batch(
            [site_id], securitytxt=fetched if self.config.enrich.securitytxt else None
        )

    async def _securitytxt(self, site_id: int, host: str, origins: list[str]) -> Fetched:
        config = self.config.enrich
        walk = CandidateWalk(
            site_id,
            candidate_urls(host, origins),
            max_bytes=config.securitytxt_max_bytes,
            timeout=config.securitytxt_timeout.total_seconds(),
        )
        step = walk.first()
        engine = self.crawler.engine
        while not isinstance(step, Fetched):
            try:
                response = await engine.download_async(step)
            except Exception as exc:
                step = walk.on_failure(step.url, exc)
            else:
                step = walk.on_response(response)
        return step

"""The check pipeline: each check to the check worker, and back what was stored.

The worker (``pipelines.worker``) judges the check, keeps its evidence and
writes it; here, on the reactor, a check costs a place in a batch. The checks
that queue up while the worker handles a batch go in the next one (at most
``BATCH``; a short batch waits ``LINGER`` for more), so the worker's
transactions are few and large. The verdict comes back onto the item for the
pipelines after this one (the enrich hand-off), and the stored check goes to the
run's progress callback. If the worker dies with a batch, its checks are handed
over again one at a time, and one that kills the worker again is stored as an
``error`` (nothing of it but its URL and times is sent the last time).

When the worker finds no space left for evidence, the crawl stops (every later
check would fail the same way): the check and every one after it are dropped
unstored, so their URLs stay due at once, and the reason goes in the crawl's
stats (``tocsin/halted``) for the command's one line.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from scrapy.exceptions import DropItem

from crawler.items import CheckItem, CheckOutcome, Dropped
from pipelines.worker import WORKER, CheckWorker, Postponed, handle_batch, start_job
from tocsin.config import Config

log = logging.getLogger("tocsin.crawl.checks")

BATCH = 100  # checks per batch (one transaction)
# A batch short of BATCH waits this long for more checks: a transaction costs a dozen
# statements whatever its size, so a few large batches beat many small ones.
LINGER = 0.05  # seconds
HALTED = "tocsin/halted"  # the stats key: why the crawl stopped early


class CheckPipeline:
    def __init__(
        self, config: Config, ctx: Any, worker: CheckWorker = WORKER, crawler: Any = None
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.worker = worker
        self.crawler = crawler
        self.halted: str | None = None  # no space for evidence: why, once the crawl stops
        self._closing: asyncio.Future[None] | None = None
        self.token = uuid.uuid4().hex  # this crawl's job in the worker
        self.pending: list[tuple[CheckItem, asyncio.Future[CheckOutcome | Postponed | None]]] = []
        self.flushing = False
        self._flusher: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> CheckPipeline:
        from crawler.runner import run_context

        ctx = run_context(crawler)
        return cls(ctx.app.config, ctx, crawler=crawler)

    def open_spider(self) -> None:
        # Spawning the worker and building the rules take a second or two: start now,
        # while the first URLs are fetched.
        self.worker.submit(start_job, self.token, self.config)

    def close_spider(self) -> None:
        self.worker.end(self.token)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, CheckItem):
            return item
        future: asyncio.Future[CheckOutcome | Postponed | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.pending.append((item, future))
        if not self.flushing:
            self.flushing = True
            self._flusher = asyncio.ensure_future(self._flush())
        outcome = await future
        if isinstance(outcome, Postponed):
            self._halt(outcome.reason)
            raise DropItem(f"not stored: {outcome.reason}", log_level="DEBUG")
        if isinstance(outcome, Dropped):  # its lease was taken over: another crawl stores it
            self.ctx.drop(outcome)
            raise DropItem(outcome.reason)
        if outcome is not None:
            item.verdict, item.family = outcome.verdict, outcome.family
            item.confidence, item.rules = outcome.confidence, list(outcome.rules)
            self.ctx.report(outcome)
        return item

    async def _flush(self) -> None:
        """Hand over what has queued up, a batch at a time, until nothing is left."""
        try:
            while self.pending:
                if len(self.pending) < BATCH:
                    await asyncio.sleep(LINGER)
                batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
                if self.halted is not None:  # the disk is full: keep nothing more
                    for _, future in batch:
                        future.set_result(Postponed(self.halted))
                    continue
                items = [item for item, _ in batch]
                try:
                    outcomes = await self._hand_over(items, self.ctx.app.clock.now())
                except Exception as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    future.set_result(outcome)
        finally:
            self.flushing = False

    def _halt(self, reason: str) -> None:
        """Stop the crawl once: what is in flight ends, nothing new starts."""
        if self.halted is not None:
            return
        self.halted = reason
        log.debug("crawl: stopping, %s", reason)
        if self.crawler is not None:
            if self.crawler.stats is not None:
                self.crawler.stats.set_value(HALTED, reason)
            engine = self.crawler.engine
            if engine is not None:
                self._closing = asyncio.ensure_future(
                    engine.close_spider_async(reason="evidence-no-space")
                )

    async def _hand_over(
        self, items: list[CheckItem], now: datetime
    ) -> list[CheckOutcome | Postponed | None]:
        """The worker's outcomes for ``items``, finding the check that kills it if one does.

        A check that crashes the worker (a parser or rule engine dying on a hostile
        payload) would otherwise fail every batch it lands in, crawl after crawl. The
        batch is retried one check at a time, not in halves: each death costs a new
        worker (~1.5 s), and one at a time only the culprit dies again.
        """
        try:
            return await self._submit(items, now)
        except BrokenProcessPool:
            pass
        if len(items) > 1:
            log.warning("the check worker died with %d checks; one at a time now", len(items))
            return [outcome for item in items for outcome in await self._hand_over([item], now)]
        (item,) = items
        log.error("the check worker died on %s; storing it as an error", item.url)
        item.fail("the check worker died while judging this check")
        return await self._submit(items, now)

    async def _submit(
        self, items: list[CheckItem], now: datetime
    ) -> list[CheckOutcome | Postponed | None]:
        future = self.worker.submit(handle_batch, self.token, self.config, now, items)
        return await asyncio.wrap_future(future)

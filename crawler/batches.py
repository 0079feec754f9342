"""Crawl batches as jobs: ``tocsin crawl --enqueue`` queues them, ``tocsin worker`` runs them.

A batch is up to ``crawl.batch_size`` due URL ids. Queueing leaves out the URLs
already in a queued or running batch, and those another crawl holds a lease on,
and each job carries a queueing lock made from its ids, so running ``--enqueue``
twice queues nothing twice. A worker runs a batch as a check crawl that claims
the batch's URLs still due (``store.leases``) under the job's id: when a worker
dies, the job is retried (``tocsin.cli.worker``) and the retry takes back the
dead attempt's leases at once; a check the dead attempt still manages to write
is dropped by the store.

The worker process keeps Scrapy's reactor thread, the spawned check worker and
Chromium across jobs (all per process: ``crawler.runner``, ``pipelines.worker``,
``crawler.browser.kept``). Each job is a crawler of its own, and its end closes
its browser contexts, so nothing a page left carries over to the next batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from procrastinate import JobContext
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import select

from store import leases
from store.models import Url
from tocsin.app import App

log = logging.getLogger("tocsin.crawl.batches")

TASK = "tocsin:crawl_batch"


def register(jobs: Any) -> None:
    """Add the crawl batch task to the procrastinate App ``jobs`` (``tocsin.jobs.job_app``)."""
    jobs.task(name=TASK, pass_context=True)(crawl_batch)


def crawl_batch(context: JobContext, url_ids: list[int]) -> dict[str, int]:
    """Check the batch's URLs that are still due; in a worker thread (sync task)."""
    from crawler.runner import RunContext, run_spiders
    from crawler.spiders.check import CheckSpider
    from tocsin.tasks import finished

    app: App = context.additional_context["app"]
    totals: Counter[str] | None = context.additional_context.get("totals")
    job = context.job
    run = RunContext(app)
    spider = (CheckSpider, {"kind": "triage", "batch": url_ids, "job": str(job.id)})

    def crawl() -> int:
        run_spiders(app, [spider], ctx=run, settings={"TOCSIN_KEEP_BROWSER": True})
        return 0

    finished(app, "crawl", crawl)  # the crawl's last success: when a worker ends a batch
    done = {"urls": len(url_ids), "checked": len(run.outcomes), "dropped": len(run.dropped)}
    log.info("job %s (attempt %s): %s", job.id, job.attempts + 1, done)
    if run.dropped:  # this worker was presumed dead meanwhile: another stores those URLs
        log.warning(
            "job %s: dropped %d checks: their lease was taken over", job.id, len(run.dropped)
        )
    if totals is not None:  # the worker's summary when it stops
        totals.update(batches=1, checked=done["checked"], dropped=done["dropped"])
    return done


@dataclass
class Enqueued:
    """What ``crawl --enqueue`` did."""

    urls: int = 0  # URLs put in new jobs
    jobs: int = 0
    already: int = 0  # due URLs left out: in a queued or running job, or leased


def _batch_lock(ids: list[int]) -> str:
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:32]
    return f"crawl-batch:{digest}"


async def _open_ids(jobs: Any, queue: str) -> set[int]:
    """The URL ids of the crawl batches queued or running."""
    ids: set[int] = set()
    for status in ("todo", "doing"):
        for job in await jobs.job_manager.list_jobs_async(task=TASK, status=status, queue=queue):
            ids.update(job.task_kwargs.get("url_ids") or [])
    return ids


async def enqueue_due(app: App, jobs: Any, *, limit: int | None = None) -> Enqueued:
    """Queue the due URLs nobody works on, ``crawl.batch_size`` per job (``jobs`` is open)."""
    config = app.config
    queue = config.worker.queue
    busy = await _open_ids(jobs, queue)
    now, wall = app.clock.now(), leases.wall_now()
    with app.db.session() as session:
        due = session.execute(
            select(Url.id, leases.is_free(wall)).where(leases.is_due(now)).order_by(Url.id)
        ).all()
    todo = [url_id for url_id, free in due if free and url_id not in busy]
    summary = Enqueued(already=len(due) - len(todo))
    if limit is not None:
        todo = todo[:limit]
    task = jobs.tasks[TASK]
    size = config.crawl.batch_size
    for start in range(0, len(todo), size):
        ids = todo[start : start + size]
        try:
            await task.configure(queue=queue, queueing_lock=_batch_lock(ids)).defer_async(
                url_ids=ids
            )
        except AlreadyEnqueued:  # the same batch is queued already (a concurrent --enqueue)
            summary.already += len(ids)
            continue
        summary.jobs += 1
        summary.urls += len(ids)
    return summary

"""Enrich, notify and recheck as jobs for ``tocsin worker``, and what ``serve`` queues.

Each job runs its command's own code (``tocsin.cli.enrich.run``, ``notify.run``,
``recheck.run``) in a worker, on the same procrastinate App and queue as the crawl
batches (``crawler.batches``). Two locks per stage, both named ``tocsin:<stage>``:

- ``lock``: procrastinate starts no job whose lock a running ('doing') job holds, so
  two notify jobs never run at once: notify keeps its single writer, whichever
  worker takes it. Enrich and recheck likewise.
- ``queueing_lock``: at most one job of a stage waits ('todo'); queueing another
  raises ``AlreadyEnqueued``, which :func:`queue` takes as done. A schedule faster
  than the workers therefore never piles up jobs that would all do the same work.

A job records its end in ``job_leases`` (:func:`finished`), as the schedule does for
what it runs itself: that is what ``/healthz`` and ``/metrics`` read, so on PostgreSQL
a job's last success is when a worker finished it, not when ``serve`` queued it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

from procrastinate import JobContext
from procrastinate.exceptions import AlreadyEnqueued

from store import job_leases
from store.leases import wall_now
from tocsin.app import App
from tocsin.errors import TocsinError
from tocsin.scheduler import attempt

log = logging.getLogger("tocsin.tasks")


class JobFailed(TocsinError):
    """A job's command failed outright (exit 2, or an error): procrastinate marks it failed."""


def finished(app: App, name: str, run: Callable[[], int]) -> int:
    """Run a job's work and record its end under ``name``; raise :class:`JobFailed` on failure."""
    started = wall_now()
    error = attempt(name, run)
    try:
        job_leases.record(app.db, name, started, error)
    except Exception:  # the work is done; only /healthz misses this end
        log.warning("job %s: cannot record its end", name, exc_info=True)
    if error:
        raise JobFailed(f"{name}: {error}")
    return 0


# The stages that run as jobs: each is its command's ``run(app)`` (tocsin/cli/<stage>.py):
# enrich every due site, notify every due notice exactly once (the outbox's protocol,
# one writer), recheck every due open incident.
STAGES = ("enrich", "notify", "recheck")


def register(jobs: Any) -> None:
    """Add the stages' tasks to the procrastinate App ``jobs`` (``tocsin.jobs.job_app``).

    Registered per App, not through a module-level Blueprint: procrastinate's
    ``add_tasks_from`` renames a blueprint's tasks in place, so a second App in one
    process (serve queues with a fresh one each round) would get them twice prefixed.
    """
    for name in STAGES:
        lock = f"tocsin:{name}"
        jobs.task(name=lock, pass_context=True, lock=lock, queueing_lock=lock)(_stage(name))


def _stage(name: str) -> Callable[[JobContext], int]:
    """The task of stage ``name``: its command's ``run``, its end recorded."""

    def task(context: JobContext) -> int:
        command = importlib.import_module(f"tocsin.cli.{name}")
        app: App = context.additional_context["app"]
        return finished(app, name, lambda: command.run(app))

    task.__name__ = task.__qualname__ = name
    return task


def queue(app: App, name: str) -> int:
    """Queue the job ``name`` (a stage, or ``crawl``: the due URLs in batches) for the
    workers; an exit code, as the command it stands for returns (``tocsin serve``)."""
    from crawler import batches
    from tocsin import jobs

    async def defer(engine: Any) -> None:
        if name == "crawl":
            done = await batches.enqueue_due(app, engine)
            log.info("serve: queued %s due URLs in %s batches", done.urls, done.jobs)
            if not done.urls and not done.already:  # nothing due anywhere: the crawl is done
                job_leases.record(app.db, "crawl", wall_now(), None)
            return
        try:
            await (
                engine.tasks[f"tocsin:{name}"]
                .configure(queue=app.config.worker.queue)
                .defer_async()
            )
        except AlreadyEnqueued:  # one is waiting already: it will do the same work
            log.info("serve: %s is queued already", name)
        else:
            log.info("serve: %s queued", name)

    async def run() -> None:
        engine = jobs.job_app(app.config)
        async with engine.open_async():
            await defer(engine)

    asyncio.run(run())
    return 0

"""`tocsin worker`: take jobs from the queue (crawl batches, enrich, notify, recheck) and
run them, until stopped.

Any number of workers, on any number of machines, share one PostgreSQL store
(``tocsin crawl --enqueue`` fills the queue). A worker runs one batch at a time
and keeps its reactor, check worker and Chromium (with its guard proxy) from one
batch to the next; they are closed when the worker exits. It sends a
heartbeat every ``worker.heartbeat``; every worker looks, as often, for jobs
whose worker has been silent for ``worker.stalled_after`` and queues them again,
and the retry takes back the dead attempt's leases (``crawler.batches``).
SIGTERM or Ctrl-C: the batch in hand is finished, then the worker exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter
from typing import Any

import click

from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.config import Config
from tocsin.ui import err

log = logging.getLogger("tocsin.worker")


async def retry_stalled(jobs: Any, config: Config) -> None:
    """Queue again the jobs (every tocsin task) of workers that stopped sending heartbeats.

    A stage job (enrich, notify, recheck: ``tocsin.tasks``) cannot go back to 'todo'
    while another job of its stage waits there (its queueing lock is unique among
    waiting jobs): it is marked failed instead, which frees its lock, and the waiting
    job does the same work. Either way nothing stays 'doing' for a dead worker.
    """
    from procrastinate.exceptions import UniqueViolation
    from procrastinate.jobs import Status

    silent = config.worker.stalled_after.total_seconds()
    manager = jobs.job_manager
    while True:
        await asyncio.sleep(config.worker.heartbeat.total_seconds())
        try:
            stalled = await manager.get_stalled_jobs(
                queue=config.worker.queue, seconds_since_heartbeat=silent
            )
        except Exception:  # the store is away for a moment: look again next time
            log.warning("cannot look for stalled jobs", exc_info=True)
            continue
        for job in stalled:
            if not job.task_name.startswith("tocsin:"):
                continue
            try:
                try:
                    await manager.retry_job(job)
                    log.warning("job %s: its worker went silent; queued again", job.id)
                except UniqueViolation:  # the same stage waits already
                    await manager.finish_job(job, Status.FAILED, delete_job=False)
                    log.warning("job %s: its worker went silent; a queued one takes over", job.id)
            except Exception:  # another worker retried it first
                log.debug("job %s: not retried", job.id, exc_info=True)


async def _work(app: App, jobs: Any, totals: Counter[str]) -> None:
    config = app.config
    async with jobs.open_async():
        watcher = asyncio.create_task(retry_stalled(jobs, config))
        try:
            await jobs.run_worker_async(
                queues=[config.worker.queue],
                name=f"tocsin@{socket.gethostname()}:{os.getpid()}",
                concurrency=1,
                additional_context={"app": app, "totals": totals},
                update_heartbeat_interval=config.worker.heartbeat.total_seconds(),
                stalled_worker_timeout=config.worker.stalled_after.total_seconds(),
                install_signal_handlers=True,
            )
        finally:
            watcher.cancel()


@click.command(name="worker")
@pass_app
def command(app: App) -> int:
    """Run queued jobs: crawl batches, enrich, notify, recheck (PostgreSQL), until stopped."""
    from crawler.browser import kept
    from pipelines.worker import WORKER
    from tocsin import jobs

    jobs.require_postgresql(app.config, "worker")
    jobs.require_schema(app.db)
    if not app.quiet:
        err.print(f"worker: taking jobs from queue {app.config.worker.queue!r}")
    totals: Counter[str] = Counter()  # over the batches this worker ran (crawler.batches)
    try:
        asyncio.run(_work(app, jobs.job_app(app.config), totals))
    finally:
        kept.shutdown()
        WORKER.shutdown()
    if not app.quiet:
        err.print(stopped_line(totals))
    return 0


def stopped_line(totals: Counter[str]) -> str:
    """The worker's summary: its batches, the checks it stored, and those the store
    dropped because their lease was taken over (the worker was presumed dead)."""
    return (
        f"worker: stopped after {totals['batches']} batch(es): {totals['checked']} checks stored, "
        f"{totals['dropped']} dropped (their lease was taken over)"
    )

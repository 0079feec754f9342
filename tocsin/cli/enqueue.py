"""`tocsin crawl --enqueue`: queue the due URLs in batches for `tocsin worker`."""

from __future__ import annotations

import asyncio

from crawler import batches
from tocsin import jobs
from tocsin.app import App
from tocsin.ui import err, out


def enqueue_due(app: App, limit: int | None) -> int:
    """Queue what is due and nobody works on; print what was queued. PostgreSQL only."""
    jobs.require_postgresql(app.config, "crawl --enqueue")
    jobs.require_schema(app.db)

    async def run() -> batches.Enqueued:
        engine = jobs.job_app(app.config)
        async with engine.open_async():
            return await batches.enqueue_due(app, engine, limit=limit)

    done = asyncio.run(run())
    out.print(f"queued {done.urls} due URLs in {done.jobs} batches on {app.config.worker.queue!r}")
    if done.already and not app.quiet:
        err.print(f"crawl: {done.already} due URLs are queued or being checked already")
    return 0

"""`tocsin serve`: the board plus the schedule, in one long-running process.

The board's workers are forked first (before any thread starts); this process then
runs the schedule (``tocsin.scheduler``): each ``[[feeds]]`` entry on its ``every``,
then crawl, enrich, notify, recheck and inbox on their ``serve.*_every``. Each job is
the command an operator would run by hand, invoked here as ``tocsin run`` invokes
its stages, so the crawl keeps one reactor and one check worker for the process.
On PostgreSQL (``serve.run_jobs``) crawl, enrich, notify and recheck are queued for
``tocsin worker`` instead (``tocsin.tasks``); the workers record when they end them.

SIGTERM or Ctrl-C: the job in hand runs to its end, no other starts, the board's
workers finish their requests, and the command exits 0.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import click

from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.config import Config
from tocsin.scheduler import Job, Scheduler
from tocsin.ui import err


def schedule(app: App, invoke: Callable[..., Any]) -> list[Job]:
    """The jobs of the config in the order a round runs them; ``invoke(command, **params)``.

    With the jobs on workers (:func:`on_workers`), crawl, enrich, notify and recheck
    only queue their work (``tocsin.tasks.queue``). Feeds are pulled here either way:
    an ingest is one guarded fetch and a few inserts, cheaper than a job's round trip,
    and it keeps the feed's fetch on the machine whose address the feed expects.
    The inbox too: its maildir or mbox is a path on this machine.
    """
    from tocsin import tasks
    from tocsin.cli import crawl, enrich, inbox, ingest, notify, recheck

    config = app.config

    def feed(entry: Any) -> Callable[[], int]:
        return lambda: invoke(
            ingest.command,
            sources=(entry.url,),
            fmt=entry.format,
            source_name=entry.source or None,
            campaign=entry.campaign or None,
        )

    def queued(name: str) -> Callable[[], int]:
        return lambda: tasks.queue(app, name)

    serve = config.serve
    jobs = [Job(entry.job, entry.every, feed(entry)) for entry in config.feeds]
    if on_workers(config):
        every = {
            "crawl": serve.crawl_every,
            "enrich": serve.enrich_every,
            "notify": serve.notify_every,
            "recheck": serve.recheck_every,
        }
        jobs += [Job(name, every[name], queued(name), queued=True) for name in every]
    else:
        jobs += [
            Job(
                "crawl",
                serve.crawl_every,
                lambda: invoke(crawl.command, limit=None, enqueue=serve.crawl_enqueue),
            ),
            Job("enrich", serve.enrich_every, lambda: invoke(enrich.command, limit=None, hosts=())),
            Job(
                "notify",
                serve.notify_every,
                lambda: invoke(
                    notify.command, dry_run=False, resend_unknown=False, older_than="1h"
                ),
            ),
            Job("recheck", serve.recheck_every, lambda: invoke(recheck.command, limit=None)),
        ]
    if serve.inbox_path or config.notify.imap_host:
        path = serve.inbox_path or None
        jobs.append(Job("inbox", serve.inbox_every, lambda: invoke(inbox.command, path=path)))
    return jobs


def on_workers(config: Config) -> bool:
    """Whether crawl, enrich, notify and recheck are queued for ``tocsin worker``."""
    from tocsin import jobs

    mode = config.serve.run_jobs
    return mode == "workers" or (mode == "auto" and jobs.backend(config) == "postgresql")


@click.command(name="serve")
@click.option("--host", metavar="H", help="The board listens here (default: board.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="P", help="Port (default: board.port)."
)
@click.pass_context
@pass_app
def command(app: App, ctx: click.Context, host: str | None, port: int | None) -> int:
    """The board plus the schedule (feeds, crawl, enrich, notify, recheck, inbox)."""
    from board import server
    from pipelines.worker import WORKER

    config = app.config
    app.db  # noqa: B018 - a missing or old store is one line before anything starts
    queues = on_workers(config)
    if queues or config.serve.crawl_enqueue:  # refused now, in one line, not at the first job
        from tocsin import jobs

        key = "serve.run_jobs" if queues else "serve.crawl_enqueue"
        jobs.require_postgresql(config, key)
        jobs.require_schema(app.db)
    sock, key = server.prepare(
        app, host or config.board.host, config.board.port if port is None else port
    )
    children = server.fork(app, sock, key)
    sock.close()  # the workers hold it
    scheduler = Scheduler(app.db, schedule(app, ctx.invoke), lease=config.serve.lease, tick=1.0)

    def stop(signum: int, _frame: object) -> None:
        if not scheduler.stopping and not app.quiet:
            err.print(f"serve: {signal.Signals(signum).name}: finishing the job in hand")
        scheduler.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not app.quiet:
        names = ", ".join(job.name for job in scheduler.jobs) or "nothing"
        where = f" (queued for workers on {config.worker.queue!r})" if queues else ""
        err.print(f"serve: scheduling {names}{where}")
    try:
        scheduler.run()
    finally:
        server.stop(children)
        code = server.wait(children)
        WORKER.shutdown()
    if not app.quiet:
        err.print("serve: stopped")
    return 0 if code == 0 else 1

"""The job engine: procrastinate, with its jobs as rows in the PostgreSQL store.

Why procrastinate (issue 14's findings): a job is taken with ``FOR UPDATE SKIP
LOCKED``, workers send heartbeats, and a job whose worker went silent can be
retried, so a SIGKILLed worker loses nothing; its sync jobs run in a thread of
a normal process, so the crawl's reactor thread and its spawned check worker
keep working. Jobs need PostgreSQL: on SQLite the commands that queue or run
jobs say so (exit 2).

procrastinate's tables are installed by ``tocsin init`` through its own schema
manager, not by an Alembic migration: procrastinate versions its schema itself,
and a copy frozen in our migrations would drift from the library installed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from store.db import Database
from tocsin.config import Config
from tocsin.errors import StoreError, UsageError

log = logging.getLogger("tocsin.jobs")

JOBS_TABLE = "procrastinate_jobs"


def require_postgresql(config: Config, command: str) -> None:
    """Jobs are rows in PostgreSQL: refuse, in one line, on any other store."""
    backend = _backend(config.database.url)
    if backend != "postgresql":
        raise UsageError(
            f"{command}: needs PostgreSQL (database.url is {backend}): jobs are rows in "
            "PostgreSQL; on one machine run `tocsin crawl`"
        )


def backend(config: Config) -> str:
    """The store's engine: "postgresql", "sqlite", or why it is neither."""
    return _backend(config.database.url)


def _backend(url: str) -> str:
    from store.db import normalise_url

    try:
        return make_url(normalise_url(url)).get_backend_name()
    except Exception:
        return "not a database URL"


def conninfo(url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (its options, search_path, kept)."""
    from store.db import normalise_url

    return (
        make_url(normalise_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def job_app(config: Config) -> Any:
    """A procrastinate App on the store, with tocsin's tasks (crawl batches, enrich, notify,
    recheck)."""
    import procrastinate

    from crawler import batches
    from tocsin import tasks

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(config.database.url), min_size=1, max_size=4
        )
    )
    batches.register(app)
    tasks.register(app)
    return app


def has_schema(db: Database) -> bool:
    with db.engine.connect() as conn:
        return inspect(conn).has_table(JOBS_TABLE)


def install_schema(db: Database, config: Config) -> bool:
    """Install procrastinate's tables if they are missing; True when it did."""
    if has_schema(db):
        return False

    async def apply() -> None:
        app = job_app(config)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    asyncio.run(apply())
    return True


def require_schema(db: Database) -> None:
    if not has_schema(db):
        raise StoreError(f"{db.shown_url} has no job tables: run `tocsin init`")

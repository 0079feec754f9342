"""Leases on URLs: each due URL is checked by one crawl at a time, on any machine.

A claim takes URLs that are still due and whose lease is free, has lapsed, or is
held for the same queued job under another token (a retried job takes back what
its dead worker held, without waiting for the backstop). It writes the lease on
the URL row, in one transaction: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, where
a row another claimer changed meanwhile is re-checked against the lease; the
write lock taken up front (``BEGIN IMMEDIATE``) on SQLite. The store writer
keeps a check only while the URL's token is still its crawl's, and releases the
lease in the same transaction (``pipelines.store``).

Leases run on the wall clock, never on ``--now``: they measure how long a
process has been silent, which a back-filling clock must not make look lapsed
or fresh. Clocks of different machines may differ by seconds; the backstop
(``crawl.lease_seconds``, ten minutes) is far longer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from store.db import Database
from store.models import Url
from tocsin.clock import utcnow


def new_token() -> str:
    """A crawl's lease token: every URL it claims carries it until stored."""
    return uuid.uuid4().hex


def wall_now() -> datetime:
    """The time leases are measured against (the wall clock, whatever ``--now`` says)."""
    return utcnow()


def is_due(due_at: datetime) -> ColumnElement[bool]:
    """Never checked, or its next check is due at ``due_at`` (the run's clock)."""
    return or_(
        Url.verdict == "pending",
        and_(Url.next_check_at.is_not(None), Url.next_check_at <= due_at),
    )


def is_free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds it, or its holder let the lease lapse."""
    return or_(Url.lease_token.is_(None), Url.lease_expires_at <= now)


def claim(
    db: Database,
    token: str,
    *,
    due_at: datetime,
    limit: int,
    lease: timedelta,
    job: str | None = None,
    among: Iterable[int] | None = None,
    now: datetime | None = None,
) -> list[tuple[int, str]]:
    """Lease up to ``limit`` due URLs (of ``among``, if given) to ``token``: [(id, url)].

    ``job`` names the queued job the crawl works for: the URLs its earlier, dead
    attempt held are taken back at once.
    """
    now = now or wall_now()
    takeable = is_free(now)
    if job is not None:
        takeable = or_(takeable, and_(Url.lease_job == job, Url.lease_token != token))
    conditions = [is_due(due_at), takeable]
    if among is not None:
        conditions.append(Url.id.in_(sorted(set(among))))
    with db.claim() as session:
        rows = session.execute(
            select(Url.id, Url.url)
            .where(*conditions)
            .order_by(Url.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            session.execute(
                update(Url)
                .where(Url.id.in_([row[0] for row in rows]))
                .values(lease_token=token, lease_job=job, lease_expires_at=now + lease)
                .execution_options(synchronize_session=False)
            )
    return [(row[0], row[1]) for row in rows]


def extend(db: Database, token: str, lease: timedelta, *, now: datetime | None = None) -> int:
    """Push back the expiry of every lease ``token`` still holds; how many it holds."""
    now = now or wall_now()
    with db.session() as session:
        result = session.execute(
            update(Url)
            .where(Url.lease_token == token)
            .values(lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release(db: Database, token: str) -> int:
    """Give up what ``token`` still holds (a crawl's end: the URLs it did not store)."""
    with db.session() as session:
        result = session.execute(
            update(Url)
            .where(Url.lease_token == token)
            .values(lease_token=None, lease_job=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def unclaimed_due(db: Database, due_at: datetime, *, now: datetime | None = None) -> int:
    """URLs due that nobody holds: what a crawl that ran to its end left undone."""
    now = now or wall_now()
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Url).where(is_due(due_at), is_free(now))
            )
            or 0
        )


def held(db: Database) -> int:
    """URLs under a lease, lapsed or not."""
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Url).where(Url.lease_token.is_not(None))
            )
            or 0
        )

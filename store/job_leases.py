"""Leases on scheduled jobs: one ``crawl`` (or ``notify``, or feed pull) at a time.

``tocsin serve`` runs each job of its schedule only after taking the job's row in
``job_leases``: the take succeeds when nobody holds the row (or its holder let the
lease lapse) and the job is due (its last start is an interval ago). Two ``serve``
processes on one store therefore never run the same job at once, and share one
schedule. The holder extends the lease while the job runs; the finish writes how it
went (what ``/metrics`` and ``/healthz`` read) and frees the row in one statement.

Like the URL leases (``store/leases.py``) they run on the wall clock, never ``--now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import Database
from store.leases import new_token, wall_now
from store.models import JobLease


@dataclass(frozen=True)
class Held:
    """A job lease this process holds."""

    name: str
    token: str
    started_at: datetime


def take(db: Database, name: str, every: timedelta, holder: str, term: timedelta) -> Held | None:
    """The job's lease when it is free and the job is due, else None."""
    now = wall_now()
    _ensure_row(db, name)
    token = new_token()
    with db.session() as session:
        taken = session.execute(
            update(JobLease)
            .where(
                JobLease.name == name,
                or_(JobLease.token.is_(None), JobLease.expires_at <= now),
                or_(JobLease.last_started_at.is_(None), JobLease.last_started_at <= now - every),
            )
            .values(token=token, holder=holder[:255], expires_at=now + term, last_started_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    return Held(name, token, now) if taken == 1 else None


def extend(db: Database, held: Held, term: timedelta) -> bool:
    """Push the lease's expiry ``term`` ahead; False when another process took it over."""
    with db.session() as session:
        return (
            session.execute(
                update(JobLease)
                .where(JobLease.name == held.name, JobLease.token == held.token)
                .values(expires_at=wall_now() + term)
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )


# Upper bounds, in seconds, of the job-duration histogram's buckets (the last: +Inf).
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600, float("inf"))


def bucket_counts(counts: list[int] | None, duration: float) -> list[int]:
    """``counts`` (one per bucket, not cumulative) with ``duration`` added."""
    counts = list(counts or [])
    counts += [0] * (len(DURATION_BUCKETS) - len(counts))
    slot = next(i for i, bound in enumerate(DURATION_BUCKETS) if duration <= bound)
    counts[slot] += 1
    return counts


def finish(db: Database, held: Held, error: str | None, *, outcome: bool = True) -> None:
    """Free the lease (only while it is still ours) and record how the run went.

    ``outcome=False``: the run only queued the job for a worker, which records the
    outcome itself when it finishes (:func:`record`); a failure to queue is recorded.
    """
    values: dict[str, object] = {"token": None, "holder": None, "expires_at": None}
    mine = (JobLease.name == held.name) & (JobLease.token == held.token)
    with db.session() as session:
        if (outcome or error) and not _add_outcome(session, mine, held.started_at, error, values):
            return  # taken over: the new holder records its own run
        session.execute(
            update(JobLease)
            .where(mine)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def record(db: Database, name: str, started_at: datetime, error: str | None) -> None:
    """Record the end of a run made under no lease of ours: a worker's job, queued by serve."""
    _ensure_row(db, name)
    where = JobLease.name == name
    values: dict[str, object] = {}
    with db.session() as session:
        if _add_outcome(session, where, started_at, error, values):
            session.execute(
                update(JobLease)
                .where(where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


def _add_outcome(
    session: Session,
    where: ColumnElement[bool],
    started_at: datetime,
    error: str | None,
    values: dict[str, object],
) -> bool:
    """Add a run's outcome to ``values``; False when no row matches ``where``.

    The row is locked while its bucket counts are read and written back: several
    workers may end runs of one job (crawl batches) at once.
    """
    counts = session.execute(
        select(JobLease.duration_buckets).where(where).with_for_update()
    ).first()
    if counts is None:
        return False
    now = wall_now()
    duration = (now - started_at).total_seconds()
    values.update(
        last_finished_at=now,
        last_duration=duration,
        runs=JobLease.runs + 1,
        duration_sum=JobLease.duration_sum + duration,
        duration_buckets=bucket_counts(counts[0], duration),
        last_status="failed" if error else "ok",
        last_error=error[:500] if error else None,
    )
    if not error:
        values["last_success_at"] = now
    return True


def jobs(db: Database) -> list[JobLease]:
    """Every job's row, by name (detached: safe to read after the session)."""
    with db.sessions() as session:
        rows = list(session.scalars(select(JobLease).order_by(JobLease.name)))
        session.expunge_all()
        return rows


def held(db: Database, now: datetime | None = None) -> list[str]:
    """The jobs whose lease is live now (what a clean stop must leave empty)."""
    now = now or wall_now()
    with db.sessions() as session:
        return list(
            session.scalars(
                select(JobLease.name).where(
                    and_(JobLease.token.is_not(None), JobLease.expires_at > now)
                )
            )
        )


def _ensure_row(db: Database, name: str) -> None:
    """The job's row, made on its first run (two processes may race: one wins)."""
    with db.sessions() as session:
        if session.get(JobLease, name) is not None:
            return
    try:
        with db.session() as session:
            session.add(JobLease(name=name))
    except IntegrityError:
        pass  # another serve made it first

"""The notifier's entry points: ``notify`` and ``recheck`` (the CLI is a thin layer).

``notify``: reconcile what a crash left ``sending``; re-check incidents whose
evidence is older than ``notify.max_evidence_age``; move incidents past dead
ends of their ladder; queue every due notice (one per recipient, batched);
send the queue. A bounce escalates at once, so the loop runs again (a few
rounds at most) to tell the next level in the same run.

``recheck``: visit the open incidents whose re-check is due (counted from the
first notice on ``escalation.recheck_after``, or asked for from the portal),
then resolve, confirm or escalate each.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.exc import IntegrityError

from notifier import transport as transports
from notifier.checks import Checker, default_checker, moved_sites, reenrich, revisit
from notifier.compose import (
    Composer,
    ComposeStats,
    Plan,
    Prepared,
    init_worker,
    plan_and_render,
)
from notifier.due import due_contact_ids, due_incident_ids
from notifier.escalation import advance_dead_ends, escalate_if_due
from notifier.outbox import Outbox, SendStats
from notifier.suppress import Suppression
from store import eventlog
from store.incidents import OPEN_STATES, confirm, resolve, schedule_recheck
from store.models import Check, Contact, Incident
from tocsin.app import App
from tocsin.errors import ConfigError, StageUnavailable

log = logging.getLogger(__name__)
MAX_ROUNDS = 4


class _Rollback(Exception):
    """Raised inside a dry-run transaction so that nothing it did is kept."""


@dataclass
class NotifyReport:
    compose: ComposeStats = field(default_factory=ComposeStats)
    send: SendStats = field(default_factory=SendStats)
    rechecked: int = 0
    resolved: int = 0
    held: int = 0
    reenriched: int = 0
    advanced: int = 0
    would_send: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(
            self.send.failed or self.send.unknown or self.send.bounced or self.send.relay_error
        )


def notify(
    app: App,
    *,
    dry_run: bool = False,
    checker: Checker | None = None,
    resend_unknown: timedelta | None = None,
) -> NotifyReport:
    """Send every due notice; see the module docstring for the steps.

    ``resend_unknown``: also send again, under the same Message-ID, the ``unknown``
    notices whose last attempt is at least that old (``notify --resend-unknown``).
    """
    report = NotifyReport()
    if app.config.notify.mode == "smtp" and not app.config.notify.from_addr:
        raise ConfigError("notify.from_addr", "required when notify.mode is smtp")
    if dry_run:  # no transport: not even the outbox folder is created
        _dry_run(app, report, Outbox(app, None))
        return report
    transport = transports.make(app.config, app.db)
    outbox = Outbox(app, transport)
    try:
        outbox.reconcile(report.send)
        resend = (
            [] if resend_unknown is None else outbox.requeue_unknown(resend_unknown, report.send)
        )
        held = _last_minute_check(app, checker, report)
        composer = Composer(app.config, app.clock.now(), Suppression.from_config(app.config))
        report.compose = composer.stats
        for _ in range(MAX_ROUNDS):
            with app.db.claim() as session:
                advanced = advance_dead_ends(session, app.clock.now(), app.config.escalation.grace)
            report.advanced += advanced
            escalated_before = report.send.escalated
            outbox.stopped = False
            _compose_all(app, composer, held, idle=_sender(outbox, report.send))
            if not outbox.stopped:  # the relay was unreachable this round: tried once only
                outbox.send_due(report.send)
            if report.send.escalated == escalated_before and not advanced:
                break
        report.send.resent_unknown = outbox.count_sent(resend)
    finally:
        transport.close()
    return report


def _sender(outbox: Outbox, stats: SendStats) -> Callable[[], bool]:
    """What this process does while render workers are busy: send one batch of what is
    already queued. False when there was nothing to send or the relay is unreachable."""
    batch = outbox.config.notify.send_batch

    def send() -> bool:
        return not outbox.stopped and outbox.send_due(stats, batch) > 0 and not outbox.stopped

    return send


def _compose_all(
    app: App,
    composer: Composer,
    held: set[int],
    *,
    keep: bool = True,
    idle: Callable[[], bool] | None = None,
) -> None:
    """Queue every due notice, chunk by chunk (``idle``: work to do while workers render)."""
    db = app.db
    with db.session() as session:
        contact_ids = [c for c in due_contact_ids(session) if c not in composer.reached]
    size = app.config.notify.compose_batch
    chunks = [contact_ids[start : start + size] for start in range(0, len(contact_ids), size)]
    workers = app.config.notify.workers
    # Workers pay off when each gets more than one chunk (forking them costs milliseconds).
    if keep and workers > 1 and len(chunks) > workers:
        _compose_parallel(app, composer, held, chunks, workers, idle)
        return
    for chunk in chunks:
        _compose_chunk(app, composer, held, chunk, keep=keep)


def _lock_contacts(app: App, session, chunk: list[int]) -> list[int]:
    """The chunk's contacts this run may queue for: all on SQLite (BEGIN IMMEDIATE holds
    the write lock); on PostgreSQL those not locked by another run (SKIP LOCKED)."""
    if app.db.is_sqlite:
        return chunk
    return list(
        session.scalars(
            select(Contact.id)
            .where(Contact.id.in_(chunk))
            .order_by(Contact.id)
            .with_for_update(skip_locked=True)
        )
    )


def _compose_chunk(
    app: App,
    composer: Composer,
    held: set[int],
    chunk: list[int],
    *,
    keep: bool = True,
    plan: Plan | None = None,
    prepared: list[Prepared] | None = None,
) -> None:
    """Queue one chunk inside a claim transaction.

    With a ``plan`` rendered outside the lock, its messages are stored only if the
    same inputs read again inside the lock are unchanged (same due items, contacts,
    allowances and earlier notices); otherwise the chunk is planned and rendered
    afresh, inside the lock, as without a plan.
    """
    try:
        with app.db.claim() as session:
            locked = _lock_contacts(app, session, chunk)
            if locked:
                if (
                    plan is not None
                    and prepared is not None
                    and locked == plan.contact_ids
                    and composer.inputs(session, locked, held) == plan.inputs
                ):
                    composer.store(session, plan, prepared)
                else:
                    composer.compose(session, locked, held)
            if not keep:
                raise _Rollback
    except _Rollback:
        pass
    except IntegrityError:
        # Another run queued some of these first; its notices stand, ours are dropped.
        log.info("recipients %d..%d were queued by another run", chunk[0], chunk[-1])


def _compose_parallel(
    app: App,
    composer: Composer,
    held: set[int],
    chunks: list[list[int]],
    workers: int,
    idle: Callable[[], bool] | None = None,
) -> None:
    """Plan and render chunks in ``workers`` processes; verify and store them here, in order.

    The workers only read the store; every write (and the check that what a worker
    read still holds) happens here, in one claim transaction per chunk.
    """
    # Workers are forked (they start at once, with everything imported) after the
    # connection pool is emptied, so no database connection is shared with them.
    app.db.engine.dispose()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=init_worker,
        initargs=(app.config, composer.now, held),
    ) as pool:
        pending: deque[tuple[list[int], Future[tuple[Plan, list[Prepared]]]]] = deque()
        # Each run takes the chunks in its own random order, so that concurrent runs
        # rarely render the same recipients at once (a worker that finds a chunk
        # already queued by another run returns at once, having rendered nothing).
        order = list(chunks)
        random.shuffle(order)
        queue = iter(order)

        def submit() -> None:
            chunk = next(queue, None)
            if chunk is not None:
                pending.append((chunk, pool.submit(plan_and_render, chunk)))

        for _ in range(2 * workers):
            submit()
        while pending:
            chunk, future = pending.popleft()
            while idle is not None and not future.done() and idle():
                pass
            plan, prepared = future.result()
            submit()
            _compose_chunk(app, composer, held, chunk, plan=plan, prepared=prepared)


def _dry_run(app: App, report: NotifyReport, outbox: Outbox) -> None:
    composer = Composer(app.config, app.clock.now(), Suppression.from_config(app.config))
    report.compose = composer.stats
    with app.db.session() as session:
        cutoff = app.clock.now() - app.config.notify.max_evidence_age
        stale = [
            i
            for i in due_incident_ids(session)
            if (session.get(Incident, i).last_confirmed or cutoff) < cutoff
        ]
    report.rechecked = len(stale)  # would be re-checked first
    for notice in outbox.pending():
        report.would_send.append(
            {
                "recipient": notice.recipient,
                "role": notice.role,
                "language": notice.language,
                "kind": notice.kind,
                "level": notice.level,
                "items": None,
                "subject": notice.subject,
                "part": f"{notice.part}/{notice.parts}",
            }
        )
    _compose_all(app, composer, set(), keep=False)
    report.would_send.extend(composer.stats.preview)


def _last_minute_check(app: App, checker: Checker | None, report: NotifyReport) -> set[int]:
    """Re-check due incidents whose evidence is stale; returns those to hold back."""
    now = app.clock.now()
    cutoff = now - app.config.notify.max_evidence_age
    with app.db.session() as session:
        due = due_incident_ids(session)
        stale = sorted(
            i.id
            for start in range(0, len(due), 900)
            for i in session.scalars(
                select(Incident).where(
                    Incident.id.in_(due[start : start + 900]), Incident.last_confirmed < cutoff
                )
            )
        )
    if not stale:
        return set()
    checker = checker or default_checker("lastminute")  # imports the crawler: only when needed
    if checker is None:
        log.warning(
            "the crawl stage is not available: %d notice(s) go out on evidence older than %s",
            len(stale),
            app.config.notify.max_evidence_age,
        )
        return set()
    results = revisit(app, stale, checker)
    report.rechecked = len(results)
    held: set[int] = set()
    still_bad_sites: list[int] = []
    with app.db.claim() as session:
        for incident_id in sorted(results):
            result = results[incident_id]
            incident = session.get(Incident, incident_id)
            if incident is None or incident.state not in OPEN_STATES:
                continue
            if result.verdict == "fixed":
                resolve(
                    session, incident, now, reason="clean at the last-minute check", check_id=None
                )
                report.resolved += 1
            elif result.verdict == "malicious":
                check = session.get(Check, result.check_id) if result.check_id else None
                if check is not None and incident.last_check_id != check.id:
                    confirm(session, incident, check, now)
                still_bad_sites.append(incident.site_id)
            else:
                held.add(incident_id)
                eventlog.record(
                    session,
                    now,
                    "incident.held",
                    incident_id=incident_id,
                    reason="last-minute check inconclusive",
                    verdicts=list(result.verdicts),
                )
    moved = moved_sites(app, still_bad_sites)
    if moved and reenrich(app, moved):
        report.reenriched = len(moved)
    report.held = len(held)
    return held


@dataclass
class RecheckReport:
    checked: int = 0
    resolved: int = 0
    confirmed: int = 0
    escalated: int = 0
    inconclusive: int = 0


def recheck(app: App, *, checker: Checker | None = None, limit: int | None = None) -> RecheckReport:
    """Re-visit the open incidents that are due, then resolve, confirm or escalate them."""
    checker = checker or default_checker()
    if checker is None:
        raise StageUnavailable("recheck", "crawl")
    now = app.clock.now()
    report = RecheckReport()
    with app.db.session() as session:
        # Re-checks asked for on the board or the portal come first, oldest request first;
        # then the schedule's, which starts at the first notice.
        requested = Incident.recheck_requested_at.is_not(None)
        query = (
            select(Incident.id)
            .where(
                Incident.state.in_(OPEN_STATES),
                or_(
                    requested,
                    and_(Incident.first_notified.is_not(None), Incident.next_recheck_at <= now),
                ),
            )
            .order_by(
                case((requested, 0), else_=1),
                Incident.recheck_requested_at,
                Incident.next_recheck_at,
                Incident.id,
            )
        )
        if limit:
            query = query.limit(limit)
        due = list(session.scalars(query))
    if not due:
        return report
    results = revisit(app, due, checker)
    grace = app.config.escalation.grace
    schedule = list(app.config.escalation.recheck_after)
    with app.db.claim() as session:
        for incident_id in sorted(results):
            result = results[incident_id]
            incident = session.get(Incident, incident_id)
            if incident is None or incident.state not in OPEN_STATES:
                continue
            report.checked += 1
            if result.verdict == "fixed":
                resolve(session, incident, now, reason="clean at re-check", check_id=None)
                report.resolved += 1
                continue
            if result.verdict == "malicious":
                check = session.get(Check, result.check_id) if result.check_id else None
                if check is not None:
                    confirm(session, incident, check, now)
                report.confirmed += 1
                if escalate_if_due(session, incident, now, grace):
                    report.escalated += 1
            else:
                report.inconclusive += 1
                eventlog.record(
                    session,
                    now,
                    "incident.recheck_inconclusive",
                    incident_id=incident.id,
                    verdicts=list(result.verdicts),
                )
            schedule_recheck(session, incident, now, schedule)
    return report

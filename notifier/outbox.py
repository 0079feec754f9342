"""Steps 2 and 3 of the outbox protocol: claim, send, mark; and crash recovery.

1. Claim a few ``queued`` notices (``BEGIN IMMEDIATE`` on SQLite; ``FOR
   UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent runs never claim the
   same row), set them ``sending`` with this process as owner, commit.
2. Hand each message to the transport.
3. Record the outcome: ``sent`` (and the incidents notified), a deferral with
   backoff (4xx, refused), a bounce (5xx: the contact is bounced and the
   incident escalates at once), or ``unknown``.

A ``sending`` row whose owner died is reconciled at the start of the next
run by asking the transport whether it took the message (see
:mod:`notifier.transport`). A row held by a live process is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import defer

from notifier import bounces, faults
from notifier.escalation import escalate_after_failure
from notifier.transport import Outcome, Transport
from store import eventlog
from store.incidents import mark_notified_many
from store.models import Contact, Incident, Notice, NoticeItem
from tocsin.app import App

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def worker_id() -> str:
    return f"{HOST}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SendStats:
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    unknown: int = 0
    escalated: int = 0
    reconciled_sent: int = 0
    requeued: int = 0
    held_over: int = 0  # a second message to one recipient in one run: left for the next
    resent_unknown: int = 0  # ``--resend-unknown``: unknown notices sent again (same Message-ID)
    unknown_left: int = 0  # ``--resend-unknown``: unknown notices younger than the bound, left
    relay_error: str = ""  # the relay could not be reached: why (one line); notices stay queued
    errors: list[str] = field(default_factory=list)


class Outbox:
    """Sends queued notices through one transport, exactly once."""

    def __init__(self, app: App, transport: Transport | None) -> None:
        self.app = app
        self.transport = transport
        self.config = app.config
        self.me = worker_id()
        self.stopped = False  # the transport said stop (relay unreachable) in send_due
        # At most one message per recipient per run, whatever path queued it (a notice
        # left queued by an earlier run, a digest, a second role on the same mailbox):
        # address -> the notice group that went (parts of one notice share it).
        self.sent_to: dict[str, tuple] = {}
        self.held_over: set[int] = set()  # left queued for the next run

    @property
    def now(self):
        return self.app.clock.now()

    # -- crash recovery -------------------------------------------------------------

    def reconcile(self, stats: SendStats) -> None:
        """Settle ``sending`` rows whose owner is gone: sent, re-queued, or unknown."""
        db = self.app.db
        with db.claim() as session:
            rows = list(
                session.scalars(
                    select(Notice)
                    .where(Notice.state == "sending")
                    .order_by(Notice.id)
                    .with_for_update(skip_locked=True)
                )
            )
            for notice in rows:
                if not self._owner_gone(notice):
                    continue
                found = self.transport.lookup(notice.message_id)
                same_host = (notice.claimed_by or "").rpartition(":")[0] == HOST
                if found == "accepted":
                    self._mark_sent(session, [notice], reconciled=True)
                    stats.reconciled_sent += 1
                elif found == "absent" and (same_host or self.transport.authoritative):
                    notice.state = "queued"
                    notice.claimed_by = None
                    eventlog.record(
                        session,
                        self.now,
                        "notice.requeued",
                        subject=("notice", notice.id),
                        reason="its sender died before handing it over",
                    )
                    stats.requeued += 1
                else:
                    notice.state = "unknown"
                    notice.last_error = (
                        "the sender died while the relay had it; delivery unknown, not re-sent"
                        if found == "begun"
                        else "held by another host that went silent; delivery unknown"
                    )
                    eventlog.record(
                        session,
                        self.now,
                        "notice.unknown",
                        subject=("notice", notice.id),
                        reason=notice.last_error,
                    )
                    stats.unknown += 1
                    stats.errors.append(f"{notice.ticket} to {notice.recipient}: unknown")

    def requeue_unknown(self, older_than: timedelta, stats: SendStats) -> list[int]:
        """Put ``unknown`` notices whose last attempt is at least ``older_than`` old back in
        the queue, unchanged (same Message-ID, ticket and bytes), so that the normal
        claim -> journal -> sent path sends them again; younger ones are counted and left.

        The operator asks for this (``notify --resend-unknown``): a possible duplicate,
        which the recipient's mail system can drop by Message-ID, is judged better than
        a notice that may never have reached the relay. Returns the re-queued ids.
        """
        now = self.now
        requeued: list[int] = []
        with self.app.db.claim() as session:
            rows = session.scalars(
                select(Notice)
                .where(Notice.state == "unknown")
                .options(defer(Notice.message))
                .order_by(Notice.id)
                .with_for_update(skip_locked=True)
            )
            for notice in rows:
                since = notice.sending_at or notice.created_at
                if since is not None and now - since < older_than:
                    stats.unknown_left += 1
                    continue
                notice.state = "queued"
                notice.claimed_by = None
                notice.next_attempt_at = None
                eventlog.record(
                    session,
                    now,
                    "notice.resent_unknown",
                    subject=("notice", notice.id),
                    ticket=notice.ticket,
                    message_id=notice.message_id,
                    unknown_since=since.isoformat() if since else None,
                    reason=notice.last_error,
                )
                requeued.append(notice.id)
        return requeued

    def count_sent(self, notice_ids: list[int]) -> int:
        """How many of these notices are now ``sent``."""
        if not notice_ids:
            return 0
        with self.app.db.session() as session:
            return len(
                list(
                    session.scalars(
                        select(Notice.id).where(Notice.id.in_(notice_ids), Notice.state == "sent")
                    )
                )
            )

    def _owner_gone(self, notice: Notice) -> bool:
        host, _, pid = (notice.claimed_by or "").rpartition(":")
        if host == HOST and pid.isdigit():
            return int(pid) != os.getpid() and not _pid_alive(int(pid))
        timeout = self.config.notify.sending_timeout
        return notice.sending_at is None or self.now - notice.sending_at >= timeout

    # -- sending ----------------------------------------------------------------------

    def pending(self) -> list[Notice]:
        """What a run would send now (for ``--dry-run``)."""
        with self.app.db.session() as session:
            return list(session.scalars(self._due_query().limit(1000)))

    def _due_query(self, kind: str | None = None):
        now = self.now
        query = select(Notice).where(
            Notice.state == "queued",
            or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now),
        )
        if kind is not None:
            query = query.where(Notice.kind == kind)
        if self.held_over:
            query = query.where(Notice.id.not_in(sorted(self.held_over)))
        return query.order_by(Notice.id)

    def send_due(self, stats: SendStats, limit: int | None = None, kind: str | None = None) -> int:
        """Send every queued notice that is due (of one kind, if given), in claimed batches.

        Returns how many were handed to the transport (whatever the outcome).
        """
        db = self.app.db
        batch = self.config.notify.send_batch
        handled = 0
        held_before = len(self.held_over)
        while limit is None or handled < limit:
            with db.claim() as session:
                size = batch if limit is None else min(batch, limit - handled)
                claimed = list(
                    session.scalars(
                        self._due_query(kind).limit(size).with_for_update(skip_locked=True)
                    )
                )
                claimed = self._one_per_recipient(claimed, stats)
                for notice in claimed:
                    notice.state = "sending"
                    notice.sending_at = self.now
                    notice.claimed_by = self.me
                    notice.attempts = (notice.attempts or 0) + 1
                work = [(n.id, n.message_id, n.recipient, n.message) for n in claimed]
            if not work:
                if self.held_over and size and len(self.held_over) > held_before:
                    held_before = len(self.held_over)
                    continue  # the batch was all held over: look further down the queue
                return handled
            faults.point("after-claim")
            outcomes: list[tuple[int, Outcome]] = []
            untried: list[int] = []
            for position, (notice_id, message_id, recipient, data) in enumerate(work):
                faults.point("before-send")
                outcome = self.transport.deliver(message_id, recipient, data)
                faults.point("after-send")
                outcomes.append((notice_id, outcome))
                handled += 1
                if outcome.stop:
                    untried = [w[0] for w in work[position + 1 :]]
                    break
            # One transaction marks the batch: a crash before it leaves the batch
            # "sending", which the next run reconciles through the transport.
            self.transport.flush()
            self._record(outcomes, stats)
            if untried:
                self._release(untried)
            if outcomes and outcomes[-1][1].stop:
                self.stopped = True  # even when it was the batch's last message
                return handled
        return handled

    def _one_per_recipient(self, claimed: list[Notice], stats: SendStats) -> list[Notice]:
        """The claimed notices whose recipient has had no other message from this run;
        the rest stay queued (unclaimed, untouched) for the next run."""
        keep = []
        for notice in claimed:
            address = notice.recipient.lower()
            group = (notice.contact_id, notice.kind, notice.level, notice.parts, notice.created_at)
            if self.sent_to.setdefault(address, group) != group:
                self.held_over.add(notice.id)
                stats.held_over += 1
                continue
            keep.append(notice)
        return keep

    def _release(self, notice_ids: list[int]) -> None:
        """Give claimed-but-untried notices back to the queue (the relay is down)."""
        if not notice_ids:
            return
        with self.app.db.claim() as session:
            for notice in session.scalars(select(Notice).where(Notice.id.in_(notice_ids))):
                if notice.state == "sending" and notice.claimed_by == self.me:
                    notice.state = "queued"
                    notice.claimed_by = None
                    notice.attempts = max((notice.attempts or 1) - 1, 0)

    def _record(self, outcomes: list[tuple[int, Outcome]], stats: SendStats) -> None:
        if not outcomes:
            return
        with self.app.db.claim() as session:
            notices = {
                n.id: n
                for n in session.scalars(
                    select(Notice)
                    .where(Notice.id.in_([i for i, _ in outcomes]))
                    .options(defer(Notice.message))  # marking needs no message bytes
                )
            }
            accepted = []
            for notice_id, outcome in outcomes:
                notice = notices.get(notice_id)
                if notice is None or notice.state != "sending":
                    continue
                if outcome.status == "accepted":
                    accepted.append(notice)
                    stats.sent += 1
                elif outcome.status == "temporary":
                    self._defer(session, notice, outcome, stats)
                elif outcome.status == "unreachable":
                    self._requeue_untouched(session, notice, outcome, stats)
                elif outcome.status == "permanent":
                    stats.escalated += self._bounce(session, notice, outcome)
                    stats.bounced += 1
                    stats.errors.append(f"{notice.ticket} to {notice.recipient}: {outcome.error}")
                else:
                    notice.state = "unknown"
                    notice.last_error = outcome.error
                    eventlog.record(
                        session,
                        self.now,
                        "notice.unknown",
                        subject=("notice", notice.id),
                        reason=outcome.error,
                    )
                    stats.unknown += 1
                    stats.errors.append(f"{notice.ticket} to {notice.recipient}: {outcome.error}")
            self._mark_sent(session, accepted)

    def _mark_sent(self, session, notices: list[Notice], *, reconciled: bool = False) -> None:
        """Mark notices sent and their incidents notified (in bulk, ids in order)."""
        if not notices:
            return
        now = self.now
        by_id = {n.id: n for n in notices}
        for notice in notices:
            notice.state = "sent"
            notice.sent_at = now
            notice.last_error = None
            notice.next_attempt_at = None
        schedule = self.config.escalation.recheck_after
        items = session.execute(
            select(
                NoticeItem.notice_id, NoticeItem.incident_id, NoticeItem.level, NoticeItem.episode
            ).where(NoticeItem.notice_id.in_(sorted(by_id)))
        ).all()
        episodes = dict(
            session.execute(
                select(Incident.id, Incident.reopen_count)
                .where(Incident.id.in_({item.incident_id for item in items}))
                .order_by(Incident.id)
                .with_for_update()
            ).all()
        )
        notified = [
            (item.incident_id, item.level)
            for item in sorted(items, key=lambda i: (i.incident_id, i.level))
            if episodes.get(item.incident_id) == item.episode
        ]
        mark_notified_many(session, notified, now, recheck_after=schedule[0] if schedule else None)
        counts: dict[int, int] = {}
        for item in items:
            counts[item.notice_id] = counts.get(item.notice_id, 0) + 1
        contacts = {
            c.id: c
            for c in session.scalars(
                select(Contact)
                .where(Contact.id.in_({n.contact_id for n in notices}))
                .order_by(Contact.id)
            )
        }
        for notice in sorted(notices, key=lambda n: n.id):
            contact = contacts.get(notice.contact_id)
            if contact is not None:
                contact.notices_sent = (contact.notices_sent or 0) + 1
            eventlog.record(
                session,
                now,
                "notice.sent",
                subject=("notice", notice.id),
                ticket=notice.ticket,
                message_id=notice.message_id,
                transport=self.transport.name,
                items=counts.get(notice.id, 0),
                reconciled=reconciled,
            )

    def _defer(self, session, notice: Notice, outcome: Outcome, stats: SendStats) -> None:
        notify = self.config.notify
        notice.last_error = f"{outcome.code or ''} {outcome.error}".strip()
        notice.claimed_by = None
        if bounces.is_recipient_deferral(outcome.code, outcome.stop):
            contact = session.get(Contact, notice.contact_id)
            if contact is not None:
                bounces.record_soft(contact, self.now, notice.last_error)
        if notice.attempts >= notify.max_attempts:
            notice.state = "failed"
            eventlog.record(
                session,
                self.now,
                "notice.failed",
                subject=("notice", notice.id),
                reason=notice.last_error,
                attempts=notice.attempts,
            )
            stats.failed += 1
            stats.errors.append(f"{notice.ticket} to {notice.recipient}: gave up")
            return
        delay = min(notify.retry_base * (2 ** max(notice.attempts - 1, 0)), notify.retry_max)
        notice.state = "queued"
        notice.next_attempt_at = self.now + max(delay, timedelta(seconds=1))
        eventlog.record(
            session,
            self.now,
            "notice.deferred",
            subject=("notice", notice.id),
            reason=notice.last_error,
            retry_at=notice.next_attempt_at.isoformat(),
        )
        stats.deferred += 1

    def _requeue_untouched(
        self, session, notice: Notice, outcome: Outcome, stats: SendStats
    ) -> None:
        """The relay was never reached: not this recipient's fault, so no back-off and no
        attempt counted (a relay down for a day must not make notices give up)."""
        notice.state = "queued"
        notice.claimed_by = None
        notice.attempts = max((notice.attempts or 1) - 1, 0)
        notice.last_error = outcome.error
        eventlog.record(
            session,
            self.now,
            "notice.requeued",
            subject=("notice", notice.id),
            reason=outcome.error,
        )
        stats.relay_error = outcome.error

    def _bounce(self, session, notice: Notice, outcome: Outcome) -> int:
        notice.state = "bounced"
        notice.last_error = f"{outcome.code or ''} {outcome.error}".strip()
        return bounce_contact(session, notice, self.now, reason=notice.last_error, source="smtp")


def bounce_contact(session, notice: Notice, now, *, reason: str, source: str) -> int:
    """A permanent failure for ``notice``: the contact is bounced, its incidents move on.

    Shared by the SMTP path (a 5xx) and the inbox (an RFC 3464 DSN). Returns
    how many incidents escalated.
    """
    contact = session.get(Contact, notice.contact_id)
    if contact is not None:
        bounces.record_hard(contact, now, reason)
        contact.bounces = (contact.bounces or 0) + 1
    eventlog.record(
        session,
        now,
        "contact.bounced",
        subject=("contact", notice.contact_id),
        notice=notice.ticket,
        source=source,
        reason=reason[:500],
    )
    escalated = 0
    items = list(session.scalars(select(NoticeItem).where(NoticeItem.notice_id == notice.id)))
    for item in sorted(items, key=lambda i: i.incident_id):
        incident = session.get(Incident, item.incident_id, with_for_update=True)
        if incident is None or incident.reopen_count != item.episode:
            continue
        if escalate_after_failure(
            session, incident, item.level, now, reason=f"notice {notice.ticket} bounced"
        ):
            escalated += 1
    return escalated

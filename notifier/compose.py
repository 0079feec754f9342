"""Turning due items into queued notices: batching, rendering, the outbox insert.

Step 1 of the outbox protocol. Inside one claim transaction (``BEGIN
IMMEDIATE`` on SQLite; the recipients' contact rows locked ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so concurrent runs share the work without waiting),
each recipient's due items are re-read, filtered by suppression, grouped by
site, split beyond ``notify.batch_cap``, rendered with their CSV and X-ARF
reports, and stored as ``queued`` notices with their Message-ID. The unique
key on ``notice_items`` guarantees no item is queued twice, whatever races.

The work is split in three so that rendering (most of the CPU) can run in
other processes, outside the write lock: :meth:`Composer.plan` reads what a
chunk of recipients is due (no writes), :func:`render_plan` turns a plan into
finished messages (pure: no database), and :meth:`Composer.store` inserts them,
set-based. A plan rendered outside the lock is stored only if the same inputs
read again inside the lock are unchanged (see ``notifier.service``).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from notifier import mail, render, tokens, xarf_reports
from notifier.context import IncidentView, contact_hints, load_incidents
from notifier.due import DueItem, due_items
from notifier.safety import (
    csv_cell,
    defang,
    defang_host,
    defang_text,
    one_line,
    valid_address,
)
from notifier.suppress import Suppression
from store.db import Database
from store.incidents import new_public_id
from store.models import Contact, Event, Notice, NoticeItem, PortalToken
from tocsin.config import Config

log = logging.getLogger(__name__)

CSV_COLUMNS = [
    "notice",
    "ticket",
    "kind",
    "level",
    "host",
    "url",
    "urls",
    "family",
    "xarf_type",
    "first_seen",
    "last_confirmed",
    "ip",
    "asn",
    "as_name",
    "prefix",
    "country",
]


@dataclass
class ComposeStats:
    notices: int = 0
    items: int = 0
    recipients: int = 0
    suppressed: int = 0
    allowlisted: int = 0
    rate_limited: int = 0
    invalid_address: int = 0
    preview: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Earlier:
    ticket: str
    date: datetime
    message_id: str


@dataclass(frozen=True)
class ContactInfo:
    """What a message needs of its recipient (plain data: it travels to render workers)."""

    id: int
    email: str
    role: str
    name: str | None


@dataclass
class Draft:
    """One message to render: one part of a recipient's due items."""

    contact: ContactInfo
    items: list[DueItem]
    part: int
    parts: int


@dataclass
class Job:
    """Everything rendering a chunk needs, and nothing from the database."""

    drafts: list[Draft]
    views: dict[int, IncidentView]
    earlier: dict[tuple[int, int], _Earlier]
    previous: dict[int, list[tuple[str, datetime, int]]]


@dataclass
class Plan:
    """What a chunk of recipients is due, read in one transaction, not yet stored."""

    contact_ids: list[int]
    inputs: tuple[Any, ...]  # compared with a fresh read inside the write lock
    job: Job
    invalid: list[int] = field(default_factory=list)  # malformed addresses, to suppress
    stats: ComposeStats = field(default_factory=ComposeStats)


@dataclass
class Prepared:
    """A finished message, ready to be inserted as a ``queued`` notice."""

    contact_id: int
    recipient: str
    role: str
    kind: str
    level: int
    language: str
    part: int
    parts: int
    ticket: str
    message_id: str
    subject: str
    message: bytes
    token_hash: str
    items: list[tuple[int, int, int, int]]  # (incident, contact, level, episode)
    incidents: list[str]  # the incidents' tickets, for the event


@dataclass
class Composer:
    """Plans, renders and stores the notices of a run."""

    config: Config
    now: datetime
    suppression: Suppression
    stats: ComposeStats = field(default_factory=ComposeStats)
    renderer: Renderer | None = None
    # Contacts this run has queued a notice for: a later round (after a bounce) leaves
    # them for the next run, so nobody gets two messages from one run.
    reached: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.renderer is None:
            self.renderer = Renderer(self.config, self.now)

    def compose(
        self, session: Session, contact_ids: list[int], exclude: set[int] | None = None
    ) -> list[int]:
        """Queue the notices of these (already locked) contacts, in the caller's transaction."""
        plan = self.plan(session, contact_ids, exclude)
        assert self.renderer is not None
        return self.store(session, plan, self.renderer.render(plan.job))

    def inputs(
        self, session: Session, contact_ids: list[int], exclude: set[int] | None = None
    ) -> tuple[Any, ...]:
        """Everything a plan depends on besides the incidents' own text, as comparable data."""
        items = due_items(session, contact_ids, exclude or ())
        if not items:
            return ((), (), {}, {}, {})
        rows = session.execute(
            select(
                Contact.id,
                Contact.email,
                Contact.role,
                Contact.name,
                Contact.suppressed,
                Contact.bounced,
                Contact.optout_types,
            )
            .where(Contact.id.in_({i.contact_id for i in items}))
            .order_by(Contact.id)
        ).all()
        contacts = tuple((*r[:6], tuple(r[6] or ())) for r in rows)
        allowance = self.suppression.allowance(session, [c[0] for c in contacts], self.now)
        earlier = _earlier_notices(session, items)
        previous = _previous_notices(session, {i.incident_id for i in items})
        return (tuple(items), contacts, allowance, earlier, dict(previous))

    def plan(
        self, session: Session, contact_ids: list[int], exclude: set[int] | None = None
    ) -> Plan:
        """Read what these contacts are due and group it into messages; writes nothing."""
        inputs = self.inputs(session, contact_ids, exclude)
        items, contact_rows, allowance, earlier, previous = inputs
        plan = Plan(list(contact_ids), inputs, Job([], {}, earlier, previous))
        if not items:
            return plan
        views = load_incidents(session, {i.incident_id for i in items})
        plan.job.views = views
        stats = plan.stats
        contacts = {c[0]: c for c in contact_rows}

        by_contact: dict[int, list[DueItem]] = defaultdict(list)
        for item in items:
            view = views.get(item.incident_id)
            contact = contacts.get(item.contact_id)
            if view is None or contact is None:
                continue
            if self.suppression.allowlisted(view.host, view.registered_domain):
                stats.allowlisted += 1
                continue
            if self.suppression.opted_out_values(contact[1], contact[4], contact[6], view.family):
                stats.suppressed += 1
                continue
            by_contact[item.contact_id].append(item)

        cap = self.config.notify.batch_cap
        for contact_id, contact_items in sorted(by_contact.items()):
            _, email, role, name, *_ = contacts[contact_id]
            if not valid_address(email):
                plan.invalid.append(contact_id)
                stats.invalid_address += 1
                continue
            contact_items.sort(key=lambda i: (views[i.incident_id].host, i.incident_id))
            parts = [contact_items[n : n + cap] for n in range(0, len(contact_items), cap)]
            allowed = allowance.get(contact_id)
            if allowed is not None and allowed < len(parts):
                stats.rate_limited += sum(len(p) for p in parts[allowed:])
                parts = parts[:allowed]
            if not parts:
                continue
            stats.recipients += 1
            info = ContactInfo(contact_id, email, role, name)
            for number, part in enumerate(parts, start=1):
                plan.job.drafts.append(Draft(info, part, number, len(parts)))
        return plan

    def store(self, session: Session, plan: Plan, prepared: list[Prepared]) -> list[int]:
        """Insert a plan's rendered messages as ``queued`` notices; returns their ids.

        Set-based: one INSERT per table for the whole chunk. The unique key on
        ``notice_items`` raises IntegrityError if another run queued an item first.
        """
        for contact_id in plan.invalid:
            log.warning("contact %d has a malformed address; suppressed", contact_id)
        if plan.invalid:
            session.execute(
                update(Contact)
                .where(Contact.id.in_(plan.invalid))
                .values(suppressed=True, suppress_reason="malformed address"),
                execution_options={"synchronize_session": False},
            )
        stats = self.stats
        for name in ("recipients", "suppressed", "allowlisted", "rate_limited", "invalid_address"):
            setattr(stats, name, getattr(stats, name) + getattr(plan.stats, name))
        if not prepared:
            return []
        now = self.now
        ids = list(
            session.scalars(
                insert(Notice).returning(Notice.id, sort_by_parameter_order=True),
                [
                    {
                        "message_id": p.message_id,
                        "ticket": p.ticket,
                        "contact_id": p.contact_id,
                        "recipient": p.recipient,
                        "role": p.role,
                        "kind": p.kind,
                        "level": p.level,
                        "language": p.language,
                        "part": p.part,
                        "parts": p.parts,
                        "subject": p.subject,
                        "message": p.message,
                        "state": "queued",
                        "attempts": 0,
                        "created_at": now,
                    }
                    for p in prepared
                ],
            )
        )
        session.execute(
            insert(NoticeItem),
            [
                {
                    "notice_id": notice_id,
                    "incident_id": incident_id,
                    "contact_id": contact_id,
                    "level": level,
                    "episode": episode,
                }
                for notice_id, p in zip(ids, prepared, strict=True)
                for incident_id, contact_id, level, episode in p.items
            ],
        )
        expires = now + self.config.notify.portal_ttl
        session.execute(
            insert(PortalToken),
            [
                {
                    "contact_id": p.contact_id,
                    "notice_id": notice_id,
                    "token_hash": p.token_hash,
                    "created_at": now,
                    "expires_at": expires,
                    "revoked": False,
                }
                for notice_id, p in zip(ids, prepared, strict=True)
            ],
        )
        session.execute(
            insert(Event),
            [
                {
                    "at": now,
                    "kind": "notice.queued",
                    "incident_id": None,
                    "subject_type": "notice",
                    "subject_id": notice_id,
                    "actor": "tocsin",
                    "data": {
                        "ticket": p.ticket,
                        "contact_id": p.contact_id,
                        "notice_kind": p.kind,
                        "level": p.level,
                        "items": len(p.items),
                        "incidents": p.incidents[:50],
                    },
                }
                for notice_id, p in zip(ids, prepared, strict=True)
            ],
        )
        for p in prepared:
            self.reached.add(p.contact_id)
            stats.notices += 1
            stats.items += len(p.items)
            stats.preview.append(
                {
                    "recipient": p.recipient,
                    "role": p.role,
                    "language": p.language,
                    "kind": p.kind,
                    "level": p.level,
                    "items": len(p.items),
                    "subject": p.subject,
                    "part": f"{p.part}/{p.parts}",
                }
            )
        return ids


class Renderer:
    """Turns a :class:`Job` into finished messages: no database, so it can run anywhere.

    Caches each incident's X-ARF report for the run (an incident told to several
    recipients gets one report).
    """

    def __init__(self, config: Config, now: datetime) -> None:
        self.config = config
        self.now = now
        self._xarf: dict[int, bytes] = {}
        self._sender = mail.sender_address(config.notify)

    def render(self, job: Job) -> list[Prepared]:
        return [self._prepare(draft, job) for draft in job.drafts]

    def _prepare(self, draft: Draft, job: Job) -> Prepared:
        notify = self.config.notify
        contact, items, views, earlier = draft.contact, draft.items, job.views, job.earlier
        ticket = new_public_id()
        language = render.pick_language(
            Counter(i.language for i in items).most_common(1)[0][0] if items else None
        )
        role = Counter(i.role for i in items).most_common(1)[0][0] or contact.role
        followups = [i for i in items if (i.incident_id, i.contact_id) in earlier]
        kind = "followup" if len(followups) == len(items) else "first"
        level = max(i.level for i in items)
        message_id = mail.new_message_id(notify, ticket)
        token = tokens.new_token(self.config)

        thread = min(
            (earlier[(i.incident_id, i.contact_id)] for i in followups),
            key=lambda e: e.date,
            default=None,
        )
        context = self._context(
            contact,
            items,
            views,
            earlier,
            job.previous,
            ticket,
            kind,
            level,
            draft.part,
            draft.parts,
            tokens.portal_url(self.config, token),
        )
        context["earlier"] = (
            {"ticket": thread.ticket, "date": thread.date} if thread is not None else None
        )
        if role == "cert":  # the ladder's last rung: point at the evidence package (issue 15)
            context["package"] = {
                "url": tokens.portal_url(self.config, token) + "/package",
                "tickets": [views[i.incident_id].ticket for i in items],
                "timestamped": bool(self.config.package.tsa_url),
            }
        rendered = render.render_notice(role, kind, language, context, html=notify.html)
        attachments = [
            mail.Attachment(
                f"{ticket}.csv", self._csv(ticket, items, views, earlier), "text", "csv"
            )
        ]
        for item in items:
            view = views[item.incident_id]
            attachments.append(
                mail.Attachment(
                    f"xarf-{view.ticket}.json", self._report(view), "application", "json"
                )
            )
        message = mail.build(
            notify,
            mail.Outgoing(
                to_addr=contact.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id,
                date=self.now,
                ticket=ticket,
                language=language,
                in_reply_to=thread.message_id if kind == "followup" and thread else None,
                attachments=attachments,
            ),
        )
        return Prepared(
            contact_id=contact.id,
            recipient=contact.email,
            role=role,
            kind=kind,
            level=level,
            language=language,
            part=draft.part,
            parts=draft.parts,
            ticket=ticket,
            message_id=message_id,
            subject=rendered.subject,
            message=message,
            token_hash=tokens.token_hash(token),
            items=[(i.incident_id, i.contact_id, i.level, i.episode) for i in items],
            incidents=[views[i.incident_id].ticket for i in items][:50],
        )

    def _context(
        self,
        contact: ContactInfo,
        items: list[DueItem],
        views: dict[int, IncidentView],
        earlier: dict[tuple[int, int], _Earlier],
        previous: dict[int, list[tuple[str, datetime, int]]],
        ticket: str,
        kind: str,
        level: int,
        part: int,
        parts: int,
        portal: str,
    ) -> dict[str, Any]:
        max_lines = self.config.notify.max_evidence_lines

        def sites(selected: list[DueItem]) -> list[SimpleNamespace]:
            # Namespaces, not dicts: Jinja looks ``site.host`` up as an attribute first,
            # and a dict makes it fail (an exception) before trying the key, every time.
            grouped: dict[int, SimpleNamespace] = {}
            for item in selected:
                view = views[item.incident_id]
                site = grouped.get(view.site_id)
                if site is None:
                    site = grouped[view.site_id] = SimpleNamespace(
                        host=view.host,
                        ips=view.ips[:8],
                        asn=view.asn,
                        as_name=view.as_name,
                        prefix=view.prefix,
                        country=view.country,
                        incidents=[],
                    )
                prior = earlier.get((item.incident_id, item.contact_id))
                site.incidents.append(
                    SimpleNamespace(
                        ticket=view.ticket,
                        family=view.family,
                        first_seen=view.first_seen,
                        last_confirmed=view.last_confirmed,
                        urls=view.urls,
                        url_count=view.url_count,
                        evidence_lines=[defang_text(x) for x in view.evidence_lines[:max_lines]],
                        earlier_ticket=prior.ticket if prior else None,
                        earlier_date=prior.date if prior else None,
                    )
                )
            return list(grouped.values())

        new = [i for i in items if (i.incident_id, i.contact_id) not in earlier]
        old = [i for i in items if (i.incident_id, i.contact_id) in earlier]
        told: set[tuple[str, str]] = set()
        history = []
        for item in items:
            for role, date, contact_id in previous.get(item.incident_id, []):
                key = (role, date.date().isoformat())
                if contact_id != contact.id and key not in told:
                    told.add(key)
                    history.append({"role": role, "date": date})
        history.sort(key=lambda h: h["date"])
        cdns = sorted({one_line(i.cdn, 100) for i in items if i.cdn})
        cdn_hosts = sorted({views[i.incident_id].host for i in items if i.cdn})
        notes = sorted({one_line(i.note, 300) for i in items if i.note})
        hosts = [views[i.incident_id].host for i in items]
        return {
            "ticket": ticket,
            "kind": kind,
            "level": level,
            "part": part,
            "parts": parts,
            "now": self.now,
            "recipient": {"email": contact.email, "role": contact.role, "name": contact.name},
            "cdn": ", ".join(cdns) if cdns else None,
            "cdn_hosts": cdn_hosts,
            "notes": notes,
            "sites_new": sites(new),
            "sites_followup": sites(old),
            "count_new": len(new),
            "count_followup": len(old),
            "site_count": len(set(hosts)),
            "first_host": hosts[0] if hosts else "",
            "previous": history[:10],
            "families": sorted(
                {
                    f
                    for i in items
                    for f in (views[i.incident_id].families or [views[i.incident_id].family])
                }
            ),
            "portal_url": portal,
            "org": self.config.notify.org_name,
            "from_addr": self._sender,
            **contact_hints([views[i.incident_id] for i in items], cdn_hosts),  # issue 11
        }

    def _report(self, view: IncidentView) -> bytes:
        cached = self._xarf.get(view.id)
        if cached is None:
            cached = self._xarf[view.id] = xarf_reports.build_bytes(
                view,
                org=self.config.notify.org_name,
                contact=self._sender,
                now=self.now,
                max_lines=self.config.notify.max_evidence_lines,
            )
        return cached

    def _csv(
        self,
        ticket: str,
        items: list[DueItem],
        views: dict[int, IncidentView],
        earlier: dict[tuple[int, int], _Earlier],
    ) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        notice = csv_cell(ticket)
        for item in items:
            view = views[item.incident_id]
            followup = (item.incident_id, item.contact_id) in earlier
            # Text from the store passes csv_cell; our own words, numbers and ISO dates
            # cannot start a formula.
            writer.writerow(
                (
                    notice,
                    csv_cell(view.ticket),
                    "followup" if followup else "first",
                    str(item.level),
                    csv_cell(defang_host(view.host)),
                    csv_cell(defang(view.urls[0])) if view.urls else "",
                    str(view.url_count),
                    csv_cell(view.family),
                    xarf_reports.xarf_type(view.family),
                    view.first_seen.isoformat(),
                    view.last_confirmed.isoformat(),
                    csv_cell(view.ip) if view.ip else "",
                    str(int(view.asn)) if view.asn else "",
                    csv_cell(view.as_name) if view.as_name else "",
                    csv_cell(view.prefix) if view.prefix else "",
                    csv_cell(view.country) if view.country else "",
                )
            )
        return buffer.getvalue().encode("utf-8")


def _earlier_notices(session: Session, items: list[DueItem]) -> dict[tuple[int, int], _Earlier]:
    """Per (incident, contact): the first notice that contact was sent in this episode."""
    if not items:
        return {}
    episodes = {(i.incident_id, i.contact_id): i.episode for i in items}
    contact_ids = sorted({i.contact_id for i in items})
    incident_ids = sorted({i.incident_id for i in items})
    found: dict[tuple[int, int], _Earlier] = {}
    for start in range(0, len(incident_ids), 500):
        rows = session.execute(
            select(
                NoticeItem.incident_id,
                NoticeItem.contact_id,
                NoticeItem.episode,
                Notice.ticket,
                Notice.sent_at,
                Notice.message_id,
            )
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(
                NoticeItem.incident_id.in_(incident_ids[start : start + 500]),
                NoticeItem.contact_id.in_(contact_ids),
                Notice.state == "sent",
            )
        )
        for incident_id, contact_id, episode, ticket, sent_at, message_id in rows:
            key = (incident_id, contact_id)
            if episodes.get(key) != episode or sent_at is None:
                continue
            if key not in found or sent_at < found[key].date:
                found[key] = _Earlier(ticket or "", sent_at, message_id)
    return found


def _previous_notices(
    session: Session, incident_ids: set[int]
) -> dict[int, list[tuple[str, datetime, int]]]:
    """Per incident: (role, sent_at, contact) of every notice sent about it, this episode."""
    from store.models import Incident

    ids = sorted(incident_ids)
    out: dict[int, list[tuple[str, datetime, int]]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(NoticeItem.incident_id, Notice.role, Notice.sent_at, Notice.contact_id)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .join(Incident, Incident.id == NoticeItem.incident_id)
            .where(
                NoticeItem.incident_id.in_(ids[start : start + 500]),
                NoticeItem.episode == Incident.reopen_count,
                Notice.state == "sent",
            )
        )
        for incident_id, role, sent_at, contact_id in rows:
            if sent_at is not None:
                out[incident_id].append((role, sent_at, contact_id))
    return out


# -- workers ----------------------------------------------------------------------------------
# ``notify.workers`` processes plan and render chunks (reading the store, no writes)
# while the main process verifies and stores: each gets the run's config, clock and
# exclusions once and opens its own database connection.

_worker: Composer | None = None
_worker_db: Database | None = None
_worker_exclude: set[int] = set()


def init_worker(config: Config, now: datetime, exclude: set[int]) -> None:
    """Pool initializer: one Composer (and X-ARF cache) and one connection per worker."""
    global _worker, _worker_db, _worker_exclude
    _worker = Composer(config, now, Suppression.from_config(config))
    _worker_db = Database(config.database.url)
    _worker_exclude = set(exclude)


def plan_and_render(contact_ids: list[int]) -> tuple[Plan, list[Prepared]]:
    """In a worker: read what these contacts are due and render it (nothing stored).

    The plan comes back without the incident views (the main process only needs
    its inputs, to compare them inside the lock, and its counts).
    """
    if _worker is None or _worker_db is None:
        raise RuntimeError("init_worker was not called")
    with _worker_db.session() as session:
        plan = _worker.plan(session, contact_ids, _worker_exclude)
    assert _worker.renderer is not None
    prepared = _worker.renderer.render(plan.job)
    plan.job = Job([], {}, {}, {})
    return plan, prepared

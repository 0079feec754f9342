"""Turning due items into queued notices: batching, rendering, the outbox insert.

Step 1 of the outbox protocol. Inside one claim transaction (``BEGIN
IMMEDIATE`` on SQLite; the recipients' contact rows locked ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so concurrent runs share the work without waiting),
each recipient's due items are re-read, filtered by suppression, grouped by
site, split beyond ``notify.batch_cap``, rendered with their CSV and X-ARF
reports, and stored as ``queued`` notices with their Message-ID. The unique
key on ``notice_items`` guarantees no item is queued twice, whatever races.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from notifier import mail, render, tokens, xarf_reports
from notifier.context import IncidentView, load_incidents
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
from store import eventlog
from store.incidents import new_public_id
from store.models import Contact, Notice, NoticeItem
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


@dataclass
class Composer:
    """Builds notices for a run; caches X-ARF reports per incident across recipients."""

    config: Config
    now: datetime
    suppression: Suppression
    stats: ComposeStats = field(default_factory=ComposeStats)
    _xarf: dict[int, bytes] = field(default_factory=dict)

    def compose(
        self, session: Session, contact_ids: list[int], exclude: set[int] | None = None
    ) -> list[Notice]:
        """Queue the notices of these (already locked) contacts, in the caller's transaction."""
        items = due_items(session, contact_ids, exclude or ())
        if not items:
            return []
        contacts = {
            c.id: c
            for c in session.scalars(
                select(Contact).where(Contact.id.in_({i.contact_id for i in items}))
            )
        }
        views = load_incidents(session, {i.incident_id for i in items})
        allowance = self.suppression.allowance(session, sorted(contacts), self.now)
        earlier = _earlier_notices(session, items)
        previous = _previous_notices(session, {i.incident_id for i in items})

        by_contact: dict[int, list[DueItem]] = defaultdict(list)
        for item in items:
            view = views.get(item.incident_id)
            contact = contacts.get(item.contact_id)
            if view is None or contact is None:
                continue
            if self.suppression.allowlisted(view.host, view.registered_domain):
                self.stats.allowlisted += 1
                continue
            if self.suppression.opted_out(contact, view.family):
                self.stats.suppressed += 1
                continue
            by_contact[item.contact_id].append(item)

        notices: list[Notice] = []
        for contact_id, contact_items in sorted(by_contact.items()):
            contact = contacts[contact_id]
            if not valid_address(contact.email):
                contact.suppressed = True
                contact.suppress_reason = "malformed address"
                self.stats.invalid_address += 1
                log.warning("contact %d has a malformed address; suppressed", contact.id)
                continue
            contact_items.sort(key=lambda i: (views[i.incident_id].host, i.incident_id))
            parts = [
                contact_items[n : n + self.config.notify.batch_cap]
                for n in range(0, len(contact_items), self.config.notify.batch_cap)
            ]
            allowed = allowance.get(contact_id)
            if allowed is not None and allowed < len(parts):
                self.stats.rate_limited += sum(len(p) for p in parts[allowed:])
                parts = parts[:allowed]
            if not parts:
                continue
            self.stats.recipients += 1
            for number, part in enumerate(parts, start=1):
                notice = self._queue(
                    session, contact, part, views, earlier, previous, number, len(parts)
                )
                notices.append(notice)
        return notices

    def _queue(
        self,
        session: Session,
        contact: Contact,
        items: list[DueItem],
        views: dict[int, IncidentView],
        earlier: dict[tuple[int, int], _Earlier],
        previous: dict[int, list[tuple[str, datetime, int]]],
        part: int,
        parts: int,
    ) -> Notice:
        notify = self.config.notify
        ticket = new_public_id()
        language = render.pick_language(
            Counter(i.language for i in items).most_common(1)[0][0] if items else None
        )
        role = Counter(i.role for i in items).most_common(1)[0][0] or contact.role
        followups = [i for i in items if (i.incident_id, i.contact_id) in earlier]
        kind = "followup" if len(followups) == len(items) else "first"
        level = max(i.level for i in items)

        notice = Notice(
            message_id=mail.new_message_id(notify, ticket),
            ticket=ticket,
            contact_id=contact.id,
            recipient=contact.email,
            role=role,
            kind=kind,
            level=level,
            language=language,
            part=part,
            parts=parts,
            subject="",
            message=b"",
            state="queued",
            attempts=0,
            created_at=self.now,
        )
        session.add(notice)
        session.flush()
        # The unique key speaks here, before any rendering work.
        session.execute(
            insert(NoticeItem),
            [
                {
                    "notice_id": notice.id,
                    "incident_id": item.incident_id,
                    "contact_id": item.contact_id,
                    "level": item.level,
                    "episode": item.episode,
                }
                for item in items
            ],
        )
        portal = tokens.issue(
            session, self.config, contact_id=contact.id, notice_id=notice.id, now=self.now
        )

        thread = min(
            (earlier[(i.incident_id, i.contact_id)] for i in followups),
            key=lambda e: e.date,
            default=None,
        )
        context = self._context(
            contact, items, views, earlier, previous, ticket, kind, level, part, parts, portal
        )
        context["earlier"] = (
            {"ticket": thread.ticket, "date": thread.date} if thread is not None else None
        )
        rendered = render.render_notice(role, kind, language, context, html=notify.html)
        attachments = [
            mail.Attachment(
                f"{ticket}.csv", self._csv(ticket, items, views, earlier), "text", "csv"
            )
        ]
        for item in items:
            attachments.append(
                mail.Attachment(
                    f"xarf-{views[item.incident_id].ticket}.json",
                    self._report(views[item.incident_id]),
                    "application",
                    "json",
                )
            )
        notice.subject = rendered.subject
        notice.message = mail.build(
            notify,
            mail.Outgoing(
                to_addr=contact.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=notice.message_id,
                date=self.now,
                ticket=ticket,
                language=language,
                in_reply_to=thread.message_id if kind == "followup" and thread else None,
                attachments=attachments,
            ),
        )
        eventlog.record(
            session,
            self.now,
            "notice.queued",
            subject=("notice", notice.id),
            ticket=ticket,
            contact_id=contact.id,
            notice_kind=kind,
            level=level,
            items=len(items),
            incidents=[views[i.incident_id].ticket for i in items][:50],
        )
        self.stats.notices += 1
        self.stats.items += len(items)
        self.stats.preview.append(
            {
                "recipient": contact.email,
                "role": role,
                "language": language,
                "kind": kind,
                "level": level,
                "items": len(items),
                "subject": rendered.subject,
                "part": f"{part}/{parts}",
            }
        )
        return notice

    def _context(
        self,
        contact: Contact,
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

        def sites(selected: list[DueItem]) -> list[dict[str, Any]]:
            grouped: dict[int, dict[str, Any]] = {}
            for item in selected:
                view = views[item.incident_id]
                site = grouped.setdefault(
                    view.site_id,
                    {
                        "host": view.host,
                        "ips": view.ips[:8],
                        "asn": view.asn,
                        "as_name": view.as_name,
                        "prefix": view.prefix,
                        "country": view.country,
                        "incidents": [],
                    },
                )
                prior = earlier.get((item.incident_id, item.contact_id))
                site["incidents"].append(
                    {
                        "ticket": view.ticket,
                        "family": view.family,
                        "first_seen": view.first_seen,
                        "last_confirmed": view.last_confirmed,
                        "urls": view.urls,
                        "url_count": view.url_count,
                        "evidence_lines": [defang_text(x) for x in view.evidence_lines][:max_lines],
                        "earlier_ticket": prior.ticket if prior else None,
                        "earlier_date": prior.date if prior else None,
                    }
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
            "families": sorted({views[i.incident_id].family for i in items}),
            "portal_url": portal,
            "org": self.config.notify.org_name,
            "from_addr": mail.sender_address(self.config.notify),
        }

    def _report(self, view: IncidentView) -> bytes:
        cached = self._xarf.get(view.id)
        if cached is None:
            report = xarf_reports.build(
                view,
                org=self.config.notify.org_name,
                contact=mail.sender_address(self.config.notify),
                now=self.now,
                max_lines=self.config.notify.max_evidence_lines,
            )
            cached = self._xarf[view.id] = xarf_reports.to_bytes(report)
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
        for item in items:
            view = views[item.incident_id]
            followup = (item.incident_id, item.contact_id) in earlier
            writer.writerow(
                [
                    csv_cell(v)
                    for v in (
                        ticket,
                        view.ticket,
                        "followup" if followup else "first",
                        item.level,
                        defang_host(view.host),
                        defang(view.urls[0]) if view.urls else "",
                        view.url_count,
                        view.family,
                        xarf_reports.xarf_type(view.family),
                        view.first_seen.isoformat(),
                        view.last_confirmed.isoformat(),
                        view.ip or "",
                        view.asn or "",
                        view.as_name or "",
                        view.prefix or "",
                        view.country or "",
                    )
                ]
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

"""The per-ASN digest: ASN | IP | host | first seen | status | family, per network.

Like the weekly per-ASN reports operator communities circulate: every
incident active in the window (seen, confirmed or resolved since ``since``),
grouped by network. Printed as CSV or text, and optionally mailed to the
subscribed network contacts (``notify.digest_subscribers``, "ASN=email").
A digest goes through the same outbox as notices; its Message-ID is derived
from the network, the address and the day, so it is sent at most once a day.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from notifier import mail, render
from notifier.safety import csv_cell, defang_host, one_line, valid_address
from store import eventlog
from store.incidents import new_public_id
from store.models import Contact, Incident, Notice, Site
from tocsin.app import App
from tocsin.errors import ConfigError

COLUMNS = ["asn", "as_name", "ip", "host", "first_seen", "status", "family", "ticket"]


@dataclass(frozen=True)
class Row:
    asn: int | None
    as_name: str
    ip: str
    host: str
    first_seen: datetime
    status: str
    family: str
    ticket: str

    def values(self, defanged: bool = False) -> list[str]:
        return [
            f"AS{self.asn}" if self.asn else "unknown",
            self.as_name,
            self.ip,
            defang_host(self.host) if defanged else self.host,
            self.first_seen.isoformat().replace("+00:00", "Z"),
            self.status,
            self.family,
            self.ticket,
        ]


def collect(app: App, since: datetime, asn: int | None = None) -> list[Row]:
    """Incidents active since ``since``, sorted by network, then host."""
    with app.db.session() as session:
        query = (
            select(Incident, Site)
            .join(Site, Site.id == Incident.site_id)
            .where(
                or_(
                    Incident.first_seen >= since,
                    Incident.last_confirmed >= since,
                    Incident.resolved_at >= since,
                )
            )
        )
        if asn is not None:
            query = query.where(Site.asn == asn)
        rows = [
            Row(
                asn=site.asn,
                as_name=one_line(site.as_name or "", 100),
                ip=(site.ips or [""])[0],
                host=site.host,
                first_seen=incident.first_seen,
                status=incident.state
                if incident.state != "open" or incident.level < 1
                else f"open, level {incident.level}",
                family=incident.family or "",
                ticket=incident.public_id,
            )
            for incident, site in session.execute(query)
        ]
    return sorted(rows, key=lambda r: (r.asn is None, r.asn or 0, r.host, r.ticket))


def to_csv(rows: list[Row], *, defanged: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if defanged else "\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row.values(defanged)])
    return buffer.getvalue()


def to_text(rows: list[Row], *, defanged: bool = False) -> str:
    """One aligned table per network."""
    groups: dict[int | None, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.asn].append(row)
    out: list[str] = []
    for asn, members in groups.items():
        name = members[0].as_name
        out.append(f"AS{asn} {name}".rstrip() if asn else "unknown network")
        table = [["IP", "host", "first seen", "status", "family"]]
        table += [
            [
                r.ip,
                defang_host(r.host) if defanged else one_line(r.host, 120),
                r.first_seen.strftime("%Y-%m-%d %H:%M"),
                r.status,
                r.family,
            ]
            for r in members
        ]
        widths = [max(len(line[i]) for line in table) for i in range(5)]
        for line in table:
            out.append(
                "  " + "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            )
        out.append("")
    return "\n".join(out)


def subscriptions(app: App) -> dict[int, list[str]]:
    """``notify.digest_subscribers`` as ASN -> addresses (a bad entry is a config error)."""
    subs: dict[int, list[str]] = defaultdict(list)
    for entry in app.config.notify.digest_subscribers:
        asn_text, _, address = entry.partition("=")
        asn_text = asn_text.strip().upper().removeprefix("AS")
        address = address.strip()
        if not asn_text.isdigit() or not valid_address(address):
            raise ConfigError("notify.digest_subscribers", f"expected ASN=email, got {entry!r}")
        subs[int(asn_text)].append(address)
    return subs


def queue(app: App, rows: list[Row], since: datetime) -> int:
    """Queue one digest per subscribed address whose network has rows; returns how many."""
    now = app.clock.now()
    notify = app.config.notify
    by_asn: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        if row.asn is not None:
            by_asn[row.asn].append(row)
    queued = 0
    for asn, addresses in sorted(subscriptions(app).items()):
        members = by_asn.get(asn)
        if not members:
            continue
        for address in addresses:
            day = now.strftime("%Y%m%d")
            tag = hashlib.sha256(f"{asn}/{address}/{day}".encode()).hexdigest()[:16]
            domain = mail.sender_address(notify).rpartition("@")[2] or "localhost"
            message_id = f"<digest.as{asn}.{day}.{tag}@{domain}>"
            ticket = new_public_id()
            context = {
                "asn": asn,
                "as_name": members[0].as_name,
                "since": since,
                "now": now,
                "count": len(members),
                "table": to_text(members, defanged=True),
                "org": notify.org_name,
                "from_addr": mail.sender_address(notify),
                "ticket": ticket,
            }
            rendered = render.render_text("asn_digest.txt.j2", "en", context)
            data = mail.build(
                notify,
                mail.Outgoing(
                    to_addr=address,
                    subject=rendered.subject,
                    text=rendered.text,
                    message_id=message_id,
                    date=now,
                    ticket=ticket,
                    language="en",
                    attachments=[
                        mail.Attachment(
                            f"AS{asn}-{day}.csv",
                            to_csv(members, defanged=True).encode(),
                            "text",
                            "csv",
                        )
                    ],
                ),
            )
            try:
                with app.db.claim() as session:
                    contact = session.scalars(
                        select(Contact).where(Contact.email == address, Contact.role == "hosting")
                    ).one_or_none()
                    if contact is None:
                        contact = Contact(
                            email=address,
                            role="hosting",
                            source="digest-subscription",
                            first_seen=now,
                        )
                        session.add(contact)
                        session.flush()
                    notice = Notice(
                        message_id=message_id,
                        ticket=ticket,
                        contact_id=contact.id,
                        recipient=address,
                        role="hosting",
                        kind="digest",
                        level=0,
                        language="en",
                        part=1,
                        parts=1,
                        subject=rendered.subject,
                        message=data,
                        state="queued",
                        attempts=0,
                        created_at=now,
                    )
                    session.add(notice)
                    session.flush()
                    eventlog.record(
                        session,
                        now,
                        "notice.queued",
                        subject=("notice", notice.id),
                        ticket=ticket,
                        notice_kind="digest",
                        asn=asn,
                        rows=len(members),
                    )
                queued += 1
            except IntegrityError:
                continue  # today's digest for this address is already there
    return queued

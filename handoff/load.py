"""What a package needs of a few incidents, read in a fixed number of queries.

One query per table for a chunk of incidents, not per incident: on PostgreSQL a
package of 1,000 incidents was one round trip per row kind per incident (about
14,000), which cost more than writing the zip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import (
    Campaign,
    Check,
    Contact,
    Event,
    Evidence,
    InboxMessage,
    Incident,
    IncidentUrl,
    Notice,
    NoticeItem,
    Recipient,
    RelayJournal,
    Site,
    Url,
)

CHUNK_SIZE = 50  # incidents read at once: their notices' text is the largest part


@dataclass
class Chunk:
    """The rows of a few incidents, by incident id (lists keep the store's order)."""

    incidents: list[tuple[Incident, Campaign, Site]]
    urls: dict[int, list[Url]] = field(default_factory=lambda: defaultdict(list))
    ladder: dict[int, list[tuple[Recipient, Contact]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    events: dict[int, list[Event]] = field(default_factory=lambda: defaultdict(list))
    checks: dict[int, list[tuple[Check, str]]] = field(default_factory=lambda: defaultdict(list))
    evidence: dict[int, list[Evidence]] = field(default_factory=lambda: defaultdict(list))
    notices: dict[int, list[Notice]] = field(default_factory=lambda: defaultdict(list))
    journal: dict[str, RelayJournal] = field(default_factory=dict)
    inbox: dict[int, list[InboxMessage]] = field(default_factory=lambda: defaultdict(list))


def load_chunk(session: Session, ids: list[int]) -> Chunk:
    """Every row the package writes for the incidents ``ids``, in their order."""
    found = {
        incident.id: (incident, campaign, site)
        for incident, campaign, site in session.execute(
            select(Incident, Campaign, Site)
            .join(Campaign, Campaign.id == Incident.campaign_id)
            .join(Site, Site.id == Incident.site_id)
            .where(Incident.id.in_(ids))
        )
    }
    chunk = Chunk([found[i] for i in ids if i in found])
    for incident_id, url in session.execute(
        select(IncidentUrl.incident_id, Url)
        .join(Url, Url.id == IncidentUrl.url_id)
        .where(IncidentUrl.incident_id.in_(ids))
        .order_by(IncidentUrl.id)
    ):
        chunk.urls[incident_id].append(url)
    for recipient, contact in session.execute(
        select(Recipient, Contact)
        .join(Contact, Contact.id == Recipient.contact_id)
        .where(Recipient.incident_id.in_(ids))
        .order_by(Recipient.level, Recipient.id)
    ):
        chunk.ladder[recipient.incident_id].append((recipient, contact))
    for event in session.scalars(
        select(Event).where(Event.incident_id.in_(ids)).order_by(Event.at, Event.id)
    ):
        chunk.events[event.incident_id or 0].append(event)
    check_ids = []
    for incident_id, check, url in session.execute(
        select(IncidentUrl.incident_id, Check, Url.url)
        .join(Check, Check.url_id == IncidentUrl.url_id)
        .join(Url, Url.id == Check.url_id)
        .where(IncidentUrl.incident_id.in_(ids))
        .order_by(Check.started_at, Check.id)
    ):
        chunk.checks[incident_id].append((check, url))
        check_ids.append(check.id)
    for blob in session.scalars(
        select(Evidence).where(Evidence.check_id.in_(check_ids)).order_by(Evidence.id)
    ):
        chunk.evidence[blob.check_id].append(blob)
    seen: set[tuple[int, int]] = set()
    message_ids, notice_ids = set(), set()
    for incident_id, notice in session.execute(
        select(NoticeItem.incident_id, Notice)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .where(NoticeItem.incident_id.in_(ids))
        .order_by(Notice.id)
    ):
        if (incident_id, notice.id) not in seen:
            seen.add((incident_id, notice.id))
            chunk.notices[incident_id].append(notice)
            message_ids.add(notice.message_id)
            notice_ids.add(notice.id)
    for row in session.scalars(
        select(RelayJournal).where(RelayJournal.message_id.in_(message_ids))
    ):
        chunk.journal[row.message_id] = row
    for message in session.scalars(
        select(InboxMessage)
        .where(InboxMessage.notice_id.in_(notice_ids))
        .order_by(InboxMessage.received_at, InboxMessage.id)
    ):
        chunk.inbox[message.notice_id or 0].append(message)
    return chunk

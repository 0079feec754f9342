"""Read-side queries several stages share: the status summary and the export.

Their output shapes are fixed by CONTRACT.md (``status --json``, ``export``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from store.models import (
    VERDICTS,
    Campaign,
    Contact,
    Incident,
    IncidentUrl,
    Notice,
    Site,
    SiteContact,
    Url,
)

# How notice states fold into the three counters of ``status --json``.
NOTICE_COUNTERS = {
    "sent": "sent",
    "queued": "queued",
    "sending": "queued",
    "failed": "failed",
    "bounced": "failed",
    "unknown": "failed",
}


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z``, the contract's time format."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def status_summary(session: Session) -> dict[str, Any]:
    """The campaign summary, in the shape of ``tocsin status --json``."""
    urls = {"total": 0, **{v: 0 for v in VERDICTS}}
    for verdict, count in session.execute(select(Url.verdict, func.count()).group_by(Url.verdict)):
        urls[verdict] = urls.get(verdict, 0) + count
        urls["total"] += count

    notices = {"sent": 0, "queued": 0, "failed": 0}
    for state, count in session.execute(select(Notice.state, func.count()).group_by(Notice.state)):
        notices[NOTICE_COUNTERS.get(state, "failed")] += count

    per_campaign: dict[int, list[Incident]] = defaultdict(list)
    for incident in session.scalars(select(Incident)):
        per_campaign[incident.campaign_id].append(incident)

    campaigns = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.first_seen, Campaign.id)):
        incidents = per_campaign.get(campaign.id, [])
        days = [
            (i.resolved_at - (i.first_notified or i.first_seen)).total_seconds() / 86400
            for i in incidents
            if i.state == "resolved" and i.resolved_at is not None
        ]
        campaigns.append(
            {
                "name": campaign.name,
                "family": campaign.family or "",
                "sites": len({i.site_id for i in incidents}),
                "open": sum(i.state in ("open", "reopened") for i in incidents),
                "notified": sum(i.first_notified is not None for i in incidents),
                "escalated": sum(i.level >= 2 for i in incidents),
                "resolved": sum(i.state == "resolved" for i in incidents),
                "median_days_to_resolve": round(statistics.median(days), 2) if days else None,
            }
        )
    return {"urls": urls, "notices": notices, "campaigns": campaigns}


def export_records(
    session: Session, campaign: str | None = None, chunk: int = 1000
) -> Iterator[dict[str, Any]]:
    """One record per URL, in the shape of ``tocsin export --format json``.

    Streams in chunks so a large store exports in bounded memory.
    """
    query = select(Url).order_by(Url.id)
    if campaign is not None:
        in_campaign = (
            select(IncidentUrl.url_id)
            .join(Incident, Incident.id == IncidentUrl.incident_id)
            .join(Campaign, Campaign.id == Incident.campaign_id)
            .where(Campaign.name == campaign)
        )
        query = query.where(or_(Url.id.in_(in_campaign), Url.campaign_hint == campaign))

    last_id = 0
    while True:
        urls = list(session.scalars(query.where(Url.id > last_id).limit(chunk)))
        if not urls:
            return
        last_id = urls[-1].id
        yield from _records_for(session, urls)


def _records_for(session: Session, urls: list[Url]) -> Iterator[dict[str, Any]]:
    site_ids = {u.site_id for u in urls if u.site_id is not None}
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(site_ids)))}

    contacts: dict[int, list[dict[str, str]]] = defaultdict(list)
    rows = session.execute(
        select(SiteContact.site_id, Contact.role, Contact.email, SiteContact.source)
        .join(Contact, Contact.id == SiteContact.contact_id)
        .where(SiteContact.site_id.in_(site_ids))
        .order_by(SiteContact.id)
    )
    for site_id, role, email, source in rows:
        contacts[site_id].append({"role": role, "email": email, "source": source})

    incident_of: dict[int, tuple[Incident, Campaign]] = {}
    rows = session.execute(
        select(IncidentUrl.url_id, Incident, Campaign)
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .join(Campaign, Campaign.id == Incident.campaign_id)
        .where(IncidentUrl.url_id.in_([u.id for u in urls]))
        .order_by(Incident.first_seen)
    )
    for url_id, incident, camp in rows:
        incident_of[url_id] = (incident, camp)  # the latest incident wins

    for url in urls:
        site = sites.get(url.site_id) if url.site_id is not None else None
        found = incident_of.get(url.id)
        incident, camp = found if found else (None, None)
        yield {
            "url": url.url,
            "verdict": url.verdict,
            "family": url.family,
            "rules": list(url.rules or []),
            "campaign": camp.name if camp else url.campaign_hint,
            "host": url.host,
            "registered_domain": site.registered_domain if site else None,
            "ips": list(site.ips) if site else [],
            "asn": site.asn if site else None,
            "as_name": site.as_name if site else None,
            "prefix": site.prefix if site else None,
            "registrar": site.registrar if site else None,
            "contacts": contacts.get(site.id, []) if site else [],
            "incident": None
            if incident is None
            else {
                "id": incident.public_id,
                "state": incident.state,
                "level": incident.level,
                "first_notified": iso(incident.first_notified),
                "resolved": iso(incident.resolved_at),
            },
        }


CSV_COLUMNS = [
    "url",
    "verdict",
    "family",
    "rules",
    "campaign",
    "host",
    "registered_domain",
    "ips",
    "asn",
    "as_name",
    "prefix",
    "registrar",
    "contacts",
    "incident_id",
    "incident_state",
    "incident_level",
    "first_notified",
    "resolved",
]


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """An export record as one CSV row: lists joined with ``;``, the incident spread out."""
    incident = record["incident"] or {}
    return {
        **{k: record[k] for k in CSV_COLUMNS if k in record and not isinstance(record[k], list)},
        "rules": ";".join(record["rules"]),
        "ips": ";".join(record["ips"]),
        "contacts": ";".join(f"{c['role']}:{c['email']}:{c['source']}" for c in record["contacts"]),
        "incident_id": incident.get("id"),
        "incident_state": incident.get("state"),
        "incident_level": incident.get("level"),
        "first_notified": incident.get("first_notified"),
        "resolved": incident.get("resolved"),
    }

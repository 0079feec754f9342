"""Read-side queries several stages share: the status summary and the export.

Their output shapes are fixed by CONTRACT.md (``status --json``, ``export``).
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.orm import Session

from store.bounces import bounce_fields, bounce_summary, bounces_cell
from store.models import (
    VERDICTS,
    Campaign,
    Check,
    Contact,
    Incident,
    IncidentUrl,
    Notice,
    Site,
    SiteContact,
    Url,
)
from tocsin.safe_text import csv_cell

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


@dataclass
class CampaignStats:
    """One campaign's counters, as the status summary and the board show them."""

    sites: int = 0
    open: int = 0
    notified: int = 0
    escalated: int = 0  # level 2 or more
    level2: int = 0  # at level 2 now
    level3: int = 0  # at level 3 or more now
    resolved: int = 0
    recompromised: int = 0  # reopened at least once
    median_days_to_resolve: float | None = None


def days_to_resolve(
    resolved_at: datetime, first_notified: datetime | None, first_seen: datetime
) -> float:
    """Time to remediation in days: from the first notice, else from first sight."""
    return (resolved_at - (first_notified or first_seen)).total_seconds() / 86400


def campaign_stats(session: Session) -> dict[int, CampaignStats]:
    """Every campaign's counters, counted in the database (one row per campaign) and
    the medians from the resolved incidents' times only."""
    is_open = Incident.state.in_(("open", "reopened"))

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    stats: dict[int, CampaignStats] = {}
    rows = session.execute(
        select(
            Incident.campaign_id,
            func.count(),
            count(is_open),
            count(Incident.first_notified.is_not(None)),
            count(Incident.level >= 2),
            count(Incident.level == 2),
            count(Incident.level >= 3),
            count(Incident.state == "resolved"),
            count(Incident.reopen_count > 0),
        ).group_by(Incident.campaign_id)
    )
    for campaign_id, *counts in rows:
        stats[campaign_id] = CampaignStats(*(int(c or 0) for c in counts))
    days: dict[int, list[float]] = defaultdict(list)
    for campaign_id, resolved_at, first_notified, first_seen in session.execute(
        select(
            Incident.campaign_id,
            Incident.resolved_at,
            Incident.first_notified,
            Incident.first_seen,
        ).where(Incident.state == "resolved", Incident.resolved_at.is_not(None))
    ):
        days[campaign_id].append(days_to_resolve(resolved_at, first_notified, first_seen))
    for campaign_id, values in days.items():
        stats[campaign_id].median_days_to_resolve = round(statistics.median(values), 2)
    return stats


def status_summary(
    session: Session, stats: dict[int, CampaignStats] | None = None
) -> dict[str, Any]:
    """The campaign summary, in the shape of ``tocsin status --json`` (``stats``: the
    campaigns' counters when the caller has them already)."""
    urls = {"total": 0, **{v: 0 for v in VERDICTS}}
    for verdict, count in session.execute(select(Url.verdict, func.count()).group_by(Url.verdict)):
        urls[verdict] = urls.get(verdict, 0) + count
        urls["total"] += count

    notices = {"sent": 0, "queued": 0, "failed": 0}
    for state, count in session.execute(select(Notice.state, func.count()).group_by(Notice.state)):
        notices[NOTICE_COUNTERS.get(state, "failed")] += count

    stats = campaign_stats(session) if stats is None else stats
    campaigns = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.first_seen, Campaign.id)):
        row = stats.get(campaign.id) or CampaignStats()
        campaigns.append(
            {
                "name": campaign.name,
                "family": campaign.family or "",
                "sites": row.sites,
                "open": row.open,
                "notified": row.notified,
                "escalated": row.escalated,
                "resolved": row.resolved,
                "median_days_to_resolve": row.median_days_to_resolve,
            }
        )
    return {
        "urls": urls,
        "notices": notices,
        "campaigns": campaigns,
        "bounces": bounce_summary(session),
        "enrichment": enrichment_summary(session),
    }


def enrichment_summary(session: Session) -> dict[str, int]:
    """Sites by enrichment state, and those whose hosting contact is missing (issue 11)."""
    counts = {"pending": 0, "partial": 0, "done": 0}
    for state, count in session.execute(
        select(Site.enrich_state, func.count()).group_by(Site.enrich_state)
    ):
        counts[state or "pending"] = counts.get(state or "pending", 0) + count
    counts["hosting_contact_missing"] = (
        session.scalar(
            select(func.count())
            .select_from(Site)
            .where(cast(Site.enrich_gaps, String).like('%"hosting-contact"%'))
        )
        or 0
    )
    return counts


def tlp_label(label: str) -> str:
    """``amber+strict`` as the label is written: ``TLP:AMBER+STRICT``."""
    return "TLP:" + label.upper()


def effective_tlp(
    incident: Incident | None, campaign: Campaign | None, default: str = "amber"
) -> str:
    """An incident's label, else its campaign's, else ``board.default_tlp``."""
    return (incident and incident.tlp) or (campaign and campaign.tlp) or default


def in_campaign(name: str) -> Any:
    """A URL belongs to the campaign ``name``: one of its incidents has it, or it was
    ingested with ``--campaign name``."""
    linked = (
        select(IncidentUrl.url_id)
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .join(Campaign, Campaign.id == Incident.campaign_id)
        .where(Campaign.name == name)
    )
    return or_(Url.id.in_(linked), Url.campaign_hint == name)


def export_records(
    session: Session, campaign: str | None = None, chunk: int = 1000, default_tlp: str = "amber"
) -> Iterator[dict[str, Any]]:
    """One record per URL, in the shape of ``tocsin export --format json``.

    Streams in chunks so a large store exports in bounded memory.
    """
    query = select(*URL_COLUMNS).order_by(Url.id)
    if campaign is not None:
        query = query.where(in_campaign(campaign))

    last_id = 0
    while True:
        urls = session.execute(query.where(Url.id > last_id).limit(chunk)).all()
        if not urls:
            return
        last_id = urls[-1].id
        yield from records_for(session, urls, default_tlp)


# What an export record needs of a URL: rows of these columns (or Url objects) go in.
URL_COLUMNS = (
    Url.id,
    Url.url,
    Url.verdict,
    Url.family,
    Url.rules,
    Url.campaign_hint,
    Url.host,
    Url.site_id,
)


def records_for(
    session: Session, urls: Sequence[Any], default_tlp: str = "amber"
) -> Iterator[dict[str, Any]]:
    """The export records of these URLs, in their order.

    Reads plain columns rather than ORM objects: the board's URL list and ``export``
    build thousands of records a second from it.
    """
    site_ids = {u.site_id for u in urls if u.site_id is not None}
    sites = {
        row.id: row
        for row in session.execute(
            select(
                Site.id,
                Site.registered_domain,
                Site.ips,
                Site.asn,
                Site.as_name,
                Site.prefix,
                Site.registrar,
                Site.cdn,
                Site.enrich_state,
                Site.enrich_gaps,
                Site.meta,
            ).where(Site.id.in_(site_ids))
        )
    }

    # In two steps, by key: joined, PostgreSQL hashed every contact for each page.
    links = session.execute(
        select(SiteContact.site_id, SiteContact.contact_id, SiteContact.source)
        .where(SiteContact.site_id.in_(site_ids))
        .order_by(SiteContact.id)
    ).all()
    people = {
        row.id: row
        for row in session.execute(
            select(
                Contact.id,
                Contact.role,
                Contact.email,
                Contact.bounced,
                Contact.bounce_status,
                Contact.bounced_at,
                Contact.bounce_reason,
            ).where(Contact.id.in_({contact_id for _, contact_id, _ in links}))
        )
    }
    contacts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for site_id, contact_id, source in links:
        person = people[contact_id]
        contacts[site_id].append(
            {"role": person.role, "email": person.email, "source": source, **bounce_fields(person)}
        )

    incident_of: dict[int, Any] = {}
    rows = session.execute(
        select(
            IncidentUrl.url_id,
            Incident.public_id,
            Incident.state,
            Incident.level,
            Incident.first_notified,
            Incident.resolved_at,
            Incident.tlp,
            Incident.family.label("incident_family"),
            Incident.families,
            Campaign.tlp.label("campaign_tlp"),
            Campaign.name,
        )
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .join(Campaign, Campaign.id == Incident.campaign_id)
        .where(IncidentUrl.url_id.in_([u.id for u in urls]))
        .order_by(Incident.first_seen)
    )
    for row in rows:
        incident_of[row.url_id] = row  # the latest incident wins

    for url in urls:
        site = sites.get(url.site_id) if url.site_id is not None else None
        incident = incident_of.get(url.id)
        label = (incident and (incident.tlp or incident.campaign_tlp)) or default_tlp
        yield {
            "url": url.url,
            "verdict": url.verdict,
            "family": url.family,
            "rules": list(url.rules or []),
            "campaign": incident.name if incident else url.campaign_hint,
            "host": url.host,
            "registered_domain": site.registered_domain if site else None,
            "ips": list(site.ips) if site else [],
            "asn": site.asn if site else None,
            "as_name": site.as_name if site else None,
            "prefix": site.prefix if site else None,
            "registrar": site.registrar if site else None,
            "contacts": contacts.get(site.id, []) + contact_extras(site.meta) if site else [],
            "enrichment": enrichment_record(site) if site else None,
            "incident": None
            if incident is None
            else {
                "id": incident.public_id,
                "state": incident.state,
                "level": incident.level,
                "first_notified": iso(incident.first_notified),
                "resolved": iso(incident.resolved_at),
                # every family the site showed during the incident, the first first
                "families": list(incident.families or [])
                or ([incident.incident_family] if incident.incident_family else []),
            },
            "tlp": tlp_label(label),
        }


def contact_extras(meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Contacts that are not mailboxes (issue 11): the owner's security.txt web forms."""
    sectxt = ((meta or {}).get("enrich") or {}).get("securitytxt") or {}
    return [
        {"role": "owner", "email": "", "source": "security.txt", "kind": "web-form", "url": url}
        for url in sectxt.get("web_forms") or []
    ]


def enrichment_record(site: Any) -> dict[str, Any]:
    """What enrichment could not learn, shown rather than hidden (issue 11): its gaps, a
    missing hosting contact, an expired security.txt, a CDN and the origin behind it."""
    enrich = (site.meta or {}).get("enrich") or {}
    sectxt = enrich.get("securitytxt") or {}
    gap = enrich.get("hosting_gap") or None
    origin = enrich.get("cdn_origin") or {}
    return {
        "state": site.enrich_state,
        "gaps": list(site.enrich_gaps or []),
        "hosting_contact_missing": gap.get("reason") if gap else None,
        "security_txt_expired": bool(sectxt.get("expired")),
        "cdn": site.cdn,
        "cdn_origin": origin.get("origin") if site.cdn else None,
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
    "tlp",
    "contact_bounces",  # JSON: [{email, role, bounce_status, bounced_at, bounce_reason}]
]


def write_csv(records: Iterable[dict[str, Any]], stream: TextIO, *, header: bool = True) -> None:
    """Export records as the CSV of ``tocsin export --format csv``, formula cells defused."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for record in records:
        writer.writerow({k: csv_cell(v) for k, v in flatten(record).items()})


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """An export record as one CSV row: lists joined with ``;``, the incident spread out."""
    incident = record["incident"] or {}
    return {
        **{k: record[k] for k in CSV_COLUMNS if k in record and not isinstance(record[k], list)},
        "rules": ";".join(record["rules"]),
        "ips": ";".join(record["ips"]),
        "contacts": ";".join(
            f"{c['role']}:{c.get('url') or c['email']}:{c['source']}" for c in record["contacts"]
        ),
        "incident_id": incident.get("id"),
        "incident_state": incident.get("state"),
        "incident_level": incident.get("level"),
        "first_notified": incident.get("first_notified"),
        "resolved": incident.get("resolved"),
        "contact_bounces": bounces_cell(record["contacts"]),
    }


def rule_matches(session: Session, since: datetime) -> Counter[str]:
    """How many checks since ``since`` each rule matched (``checks.rules``), on both
    engines alike: the JSON lists are counted here, streamed, not in SQL."""
    counts: Counter[str] = Counter()
    rows = session.execute(
        select(Check.rules).where(Check.started_at >= since).execution_options(yield_per=2000)
    )
    for (rules,) in rows:
        counts.update(set(rules or ()))
    return counts

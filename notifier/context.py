"""What a notice says about an incident, loaded in bulk from the store.

Rendering, the CSV, the X-ARF reports and the digest all read these plain
views rather than ORM rows, so one query per table serves a whole batch of
recipients, and the templates never touch the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Campaign, Check, Incident, IncidentUrl, Site, Url

MAX_URLS = 20  # per incident in a notice; the CSV says how many there were


@dataclass
class IncidentView:
    id: int
    ticket: str
    family: str
    state: str
    level: int
    episode: int
    first_seen: datetime
    last_confirmed: datetime
    first_notified: datetime | None
    resolved_at: datetime | None
    campaign: str
    site_id: int
    host: str
    registered_domain: str | None
    ips: list[str]
    asn: int | None
    as_name: str | None
    prefix: str | None
    country: str | None
    registrar: str | None
    cdn: str | None
    shared_hosting: bool
    urls: list[str]
    url_count: int
    evidence_lines: list[str]
    rules: list[str]
    confidence: float | None
    payload_sha256: str | None
    content_type: str | None
    final_url: str | None
    iocs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ip(self) -> str | None:
        return self.ips[0] if self.ips else None


def load_incidents(session: Session, incident_ids: Iterable[int]) -> dict[int, IncidentView]:
    """Views of the given incidents, keyed by id (missing ids are left out)."""
    ids = sorted(set(incident_ids))
    views: dict[int, IncidentView] = {}
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        views.update(_load_chunk(session, chunk))
    return views


def _load_chunk(session: Session, ids: list[int]) -> dict[int, IncidentView]:
    # Plain rows, not ORM objects: a run loads 100,000 of these and never changes them.
    incidents = session.execute(select(Incident.__table__).where(Incident.id.in_(ids))).all()
    if not incidents:
        return {}
    sites = {
        s.id: s
        for s in session.execute(
            select(Site.__table__).where(Site.id.in_({i.site_id for i in incidents}))
        )
    }
    campaigns = dict(
        session.execute(
            select(Campaign.id, Campaign.name).where(
                Campaign.id.in_({i.campaign_id for i in incidents})
            )
        ).all()
    )
    check_ids = {i.last_check_id for i in incidents if i.last_check_id is not None}
    checks = {}
    if check_ids:
        checks = {
            c.id: c
            for c in session.execute(
                select(
                    Check.id,
                    Check.family,
                    Check.evidence_lines,
                    Check.rules,
                    Check.confidence,
                    Check.payload_sha256,
                    Check.content_type,
                    Check.final_url,
                    Check.iocs,
                ).where(Check.id.in_(check_ids))
            )
        }
    urls: dict[int, list[str]] = defaultdict(list)
    for incident_id, url in session.execute(
        select(IncidentUrl.incident_id, Url.url)
        .join(Url, Url.id == IncidentUrl.url_id)
        .where(IncidentUrl.incident_id.in_(ids))
        .order_by(IncidentUrl.incident_id, IncidentUrl.id)
    ):
        urls[incident_id].append(url)

    views = {}
    for i in incidents:
        site = sites[i.site_id]
        check = checks.get(i.last_check_id) if i.last_check_id else None
        all_urls = urls.get(i.id, [])
        views[i.id] = IncidentView(
            id=i.id,
            ticket=i.public_id,
            family=i.family or (check.family if check else None) or "unknown",
            state=i.state,
            level=i.level,
            episode=i.reopen_count,
            first_seen=i.first_seen,
            last_confirmed=i.last_confirmed,
            first_notified=i.first_notified,
            resolved_at=i.resolved_at,
            campaign=campaigns.get(i.campaign_id, ""),
            site_id=site.id,
            host=site.host,
            registered_domain=site.registered_domain,
            ips=list(site.ips or []),
            asn=site.asn,
            as_name=site.as_name,
            prefix=site.prefix,
            country=site.country,
            registrar=site.registrar,
            cdn=site.cdn,
            shared_hosting=bool(site.shared_hosting),
            urls=all_urls[:MAX_URLS],
            url_count=len(all_urls),
            evidence_lines=list(check.evidence_lines or []) if check else [],
            rules=list(check.rules or []) if check else [],
            confidence=check.confidence if check else None,
            payload_sha256=check.payload_sha256 if check else None,
            content_type=check.content_type if check else None,
            final_url=check.final_url if check else None,
            iocs=dict(check.iocs or {}) if check else {},
        )
    return views

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
    # Every family the site showed during the incident, ``family`` first: one incident
    # per site gathers them (a payload that changes between visits, a second URL).
    families: list[str] = field(default_factory=list)
    # issue 11 (contacts): what enrichment noted on the site (Site.meta["enrich"])
    cdn_origin: str | None = None  # the origin behind the CDN its evidence reveals
    owner_web_forms: list[str] = field(default_factory=list)  # security.txt https: Contact
    security_txt_expired: bool = False

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
    # One joined query of plain columns, not ORM objects: a run loads 100,000 of these
    # and never changes them, and only the JSON columns a notice prints are decoded.
    rows = session.execute(
        select(
            Incident.id,
            Incident.public_id,
            Incident.family,
            Incident.families,
            Incident.state,
            Incident.level,
            Incident.reopen_count,
            Incident.first_seen,
            Incident.last_confirmed,
            Incident.first_notified,
            Incident.resolved_at,
            Campaign.name.label("campaign"),
            Site.id.label("site_id"),
            Site.host,
            Site.registered_domain,
            Site.ips,
            Site.asn,
            Site.as_name,
            Site.prefix,
            Site.country,
            Site.registrar,
            Site.cdn,
            Site.shared_hosting,
            Site.meta.label("site_meta"),
            Check.id.label("check_id"),
            Check.family.label("check_family"),
            Check.evidence_lines,
            Check.rules,
            Check.confidence,
            Check.payload_sha256,
            Check.content_type,
            Check.final_url,
            Check.iocs,
        )
        .join(Site, Site.id == Incident.site_id)
        .outerjoin(Campaign, Campaign.id == Incident.campaign_id)
        .outerjoin(Check, Check.id == Incident.last_check_id)
        .where(Incident.id.in_(ids))
    ).all()
    if not rows:
        return {}
    urls: dict[int, list[str]] = defaultdict(list)
    for incident_id, url in session.execute(
        select(IncidentUrl.incident_id, Url.url)
        .join(Url, Url.id == IncidentUrl.url_id)
        .where(IncidentUrl.incident_id.in_(ids))
        .order_by(IncidentUrl.incident_id, IncidentUrl.id)
    ):
        urls[incident_id].append(url)

    views = {}
    for i in rows:
        has_check = i.check_id is not None
        all_urls = urls.get(i.id, [])
        views[i.id] = IncidentView(
            id=i.id,
            ticket=i.public_id,
            family=i.family or (i.check_family if has_check else None) or "unknown",
            state=i.state,
            level=i.level,
            episode=i.reopen_count,
            first_seen=i.first_seen,
            last_confirmed=i.last_confirmed,
            first_notified=i.first_notified,
            resolved_at=i.resolved_at,
            campaign=i.campaign or "",
            site_id=i.site_id,
            host=i.host,
            registered_domain=i.registered_domain,
            ips=list(i.ips or []),
            asn=i.asn,
            as_name=i.as_name,
            prefix=i.prefix,
            country=i.country,
            registrar=i.registrar,
            cdn=i.cdn,
            shared_hosting=bool(i.shared_hosting),
            urls=all_urls[:MAX_URLS],
            url_count=len(all_urls),
            evidence_lines=list(i.evidence_lines or []) if has_check else [],
            rules=list(i.rules or []) if has_check else [],
            confidence=i.confidence if has_check else None,
            payload_sha256=i.payload_sha256 if has_check else None,
            content_type=i.content_type if has_check else None,
            final_url=i.final_url if has_check else None,
            iocs=dict(i.iocs or {}) if has_check else {},
            **_enrich_notes(i.site_meta),
        )
        view = views[i.id]
        view.families = list(dict.fromkeys([view.family, *(i.families or [])]))
    return views


def _enrich_notes(meta: dict | None) -> dict:
    """The owner's web forms, an expired security.txt, the CDN's origin (issue 11)."""
    enrich = (meta or {}).get("enrich") or {}
    sectxt = enrich.get("securitytxt") or {}
    origin = enrich.get("cdn_origin") or {}
    return {
        "cdn_origin": str(origin.get("origin") or "")[:255] or None,
        "owner_web_forms": [str(u)[:300] for u in sectxt.get("web_forms") or []][:5],
        "security_txt_expired": bool(sectxt.get("expired")),
    }


def contact_hints(views: Iterable[IncidentView], cdn_hosts: Iterable[str] = ()) -> dict:
    """A notice's context variables about contacts (issue 11), over its incidents:
    ``cdn_origin_unknown`` (a CDN-fronted site whose origin we could not find),
    ``cdn_origin`` (the origins found), ``owner_web_forms``, ``security_txt_expired``."""
    views = list(views)
    fronted = set(cdn_hosts)
    behind = [v for v in views if v.host in fronted]
    origins = {v.host: v.cdn_origin for v in behind if v.cdn_origin}
    if len(set(origins.values())) > 1:
        cdn_origin = ", ".join(f"{o} (for {h})" for h, o in sorted(origins.items()))
    else:
        cdn_origin = next(iter(origins.values()), "")
    forms = list(dict.fromkeys(u for v in views for u in v.owner_web_forms))
    return {
        "cdn_origin_unknown": any(not v.cdn_origin for v in behind),
        "cdn_origin": cdn_origin,
        "owner_web_forms": forms[:5],
        "security_txt_expired": any(v.security_txt_expired for v in views),
    }

"""A campaign as investigators need it: its compromised URLs, the attacker's hosts,
the payloads, the families and the TLP, read from the store in a few queries.

Both exports (MISP and STIX) are built from this one reading, so they agree.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.evidence import EvidenceStore, unzip_payload
from store.incidents import OPEN_STATES
from store.models import Campaign, Check, Evidence, Incident, IncidentUrl, Site, Url
from store.queries import effective_tlp
from tocsin.config import TLP_LABELS
from tocsin.errors import UsageError

# Bounds: a campaign's attacker hosts and payloads are few; these stop a hostile
# page that names thousands of hosts from making an event nobody can open.
MAX_INDICATORS = 2000  # per kind: domains, IPs, URLs
MAX_PAYLOADS = 500
MAX_UNZIPPED = 64  # payload zips opened for their md5 and file name


@dataclass
class CompromisedUrl:
    """A URL on a compromised site, and the incident it belongs to."""

    url: str
    host: str
    incident: str  # the ticket id
    state: str  # the incident's: open, resolved, reopened
    tlp: str  # the incident's label: clear, green, amber, amber+strict, red
    first_seen: datetime
    last_seen: datetime
    title: str | None = None  # the page title the browser saw (attacker text)

    @property
    def active(self) -> bool:
        """Still compromised when last looked at: worth an IDS rule."""
        return self.state in OPEN_STATES


@dataclass
class Payload:
    """A file the campaign served; md5 and name are known when its zip is at hand."""

    sha256: str
    md5: str | None = None
    filename: str | None = None
    size: int | None = None
    url: str | None = None  # where it was served


@dataclass
class CampaignFacts:
    """Everything both exports say about one campaign."""

    name: str
    families: list[str]
    first_seen: datetime
    last_seen: datetime
    tlp: str  # the strictest label of its incidents (and its own)
    urls: list[CompromisedUrl] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)  # attacker infrastructure
    ips: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # injected-script and exfiltration URLs
    payloads: list[Payload] = field(default_factory=list)

    @property
    def family(self) -> str | None:
        return self.families[0] if self.families else None


def strictest(labels: Iterable[str]) -> str:
    """The most restrictive TLP label of ``labels`` (clear < green < amber < ... < red)."""
    return max(labels, key=TLP_LABELS.index)


def campaign_names(session: Session) -> list[str]:
    """Every campaign, oldest first."""
    return list(session.scalars(select(Campaign.name).order_by(Campaign.first_seen, Campaign.id)))


def campaign_facts(
    session: Session,
    name: str,
    *,
    default_tlp: str = "amber",
    evidence: EvidenceStore | None = None,
) -> CampaignFacts:
    """Read campaign ``name``; :class:`UsageError` when there is none of that name."""
    campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
    if campaign is None:
        raise UsageError(f"export: no campaign named {name!r}")
    incidents = {
        inc.id: (inc, host, ips or [])
        for inc, host, ips in session.execute(
            select(Incident, Site.host, Site.ips)
            .join(Site, Site.id == Incident.site_id)
            .where(Incident.campaign_id == campaign.id)
            .order_by(Incident.first_seen, Incident.id)
        )
    }
    labels = {i: effective_tlp(inc, campaign, default_tlp) for i, (inc, _, _) in incidents.items()}
    families = [campaign.family] if campaign.family else []
    for inc, _, _ in incidents.values():
        for family in [inc.family, *(inc.families or [])]:
            if family and family not in families:
                families.append(family)
    facts = CampaignFacts(
        name=campaign.name,
        families=families,
        first_seen=campaign.first_seen,
        last_seen=campaign.last_seen,
        tlp=strictest([effective_tlp(None, campaign, default_tlp), *labels.values()]),
    )

    # The campaign's URLs, and each URL's malicious checks (newest last).
    url_rows = session.execute(
        select(IncidentUrl.incident_id, Url.id, Url.url, Url.host, Url.first_seen, Url.last_checked)
        .join(Url, Url.id == IncidentUrl.url_id)
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .where(Incident.campaign_id == campaign.id)
        .order_by(Url.id)
    ).all()
    checks = session.execute(
        select(
            Check.id, Check.url_id, Check.iocs, Check.payload_sha256, Check.meta, Check.final_url
        )
        .join(IncidentUrl, IncidentUrl.url_id == Check.url_id)
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .where(Incident.campaign_id == campaign.id, Check.verdict == "malicious")
        .order_by(Check.id)
    ).all()
    titles: dict[int, str] = {}
    for check in checks:
        title = ((check.meta or {}).get("browser") or {}).get("title")
        if title:
            titles[check.url_id] = title

    seen_urls: set[str] = set()
    for incident_id, url_id, text, host, first_seen, last_checked in url_rows:
        if text in seen_urls:
            continue
        seen_urls.add(text)
        inc, _, _ = incidents[incident_id]
        facts.urls.append(
            CompromisedUrl(
                url=text,
                host=host,
                incident=inc.public_id,
                state=inc.state,
                tlp=labels[incident_id],
                first_seen=first_seen,
                last_seen=max(last_checked or first_seen, inc.last_confirmed),
                title=titles.get(url_id),
            )
        )

    # The attacker's side: what the checks named that is not a compromised site itself.
    site_hosts = {host for _, host, _ in incidents.values()}
    site_ips = {ip for _, _, ips in incidents.values() for ip in ips}
    domains, ips, scripts, hashes = _Bounded(), _Bounded(), _Bounded(), _Bounded(MAX_PAYLOADS)
    served_at: dict[str, str] = {}
    for check in checks:
        iocs = check.iocs or {}
        for value in _texts(iocs, "domains"):
            if value.lower() not in site_hosts:
                domains.add(value.lower())
        for value in _texts(iocs, "ips"):
            if value not in site_ips:
                ips.add(value)
        for value in _texts(iocs, "urls"):
            if value not in seen_urls:
                scripts.add(value)
        for value in [check.payload_sha256, *_texts(iocs, "sha256")]:
            if value:
                hashes.add(value.lower())
                if check.payload_sha256 == value and check.final_url:
                    served_at.setdefault(value.lower(), check.final_url)
    facts.domains, facts.ips, facts.scripts = domains.values, ips.values, scripts.values
    facts.payloads = _payloads(session, campaign.id, hashes.values, served_at, evidence)
    return facts


def _texts(iocs: dict[str, Any], kind: str) -> list[str]:
    """One kind of a check's IOCs, strings only (the column is JSON)."""
    values = iocs.get(kind) if isinstance(iocs, dict) else None
    return [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []


class _Bounded:
    """An insertion-ordered set that stops growing at ``limit``."""

    def __init__(self, limit: int = MAX_INDICATORS) -> None:
        self.limit = limit
        self.values: list[str] = []
        self._seen: set[str] = set()

    def add(self, value: str) -> None:
        if value not in self._seen and len(self.values) < self.limit:
            self._seen.add(value)
            self.values.append(value)


def _payloads(
    session: Session,
    campaign_id: int,
    hashes: list[str],
    served_at: dict[str, str],
    evidence: EvidenceStore | None,
) -> list[Payload]:
    """The payloads by sha256; md5, name and size from their zips where the store has them
    (a zip holds one member, ``<name>.bin``: the name as tocsin made it safe)."""
    zips = {
        content: blob
        for content, blob in session.execute(
            select(Evidence.content_sha256, Evidence.sha256)
            .join(Check, Check.id == Evidence.check_id)
            .join(IncidentUrl, IncidentUrl.url_id == Check.url_id)
            .join(Incident, Incident.id == IncidentUrl.incident_id)
            .where(Incident.campaign_id == campaign_id, Evidence.kind == "payload_zip")
        )
        if content
    }
    found: list[Payload] = []
    opened = 0
    for sha in [*hashes, *(h for h in zips if h not in hashes)][:MAX_PAYLOADS]:
        payload = Payload(sha256=sha, url=served_at.get(sha))
        blob = zips.get(sha)
        if evidence is not None and blob and opened < MAX_UNZIPPED and evidence.exists(blob):
            opened += 1
            try:
                members = unzip_payload(evidence.get(blob))
            except (OSError, RuntimeError, ValueError, zipfile.BadZipFile):
                members = {}  # a zip cut at evidence.max_blob: the sha256 is still known
            for member, data in members.items():
                if hashlib.sha256(data).hexdigest() == sha:
                    payload.md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
                    payload.size = len(data)
                    payload.filename = member.removesuffix(".bin")
        found.append(payload)
    return found

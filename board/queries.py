"""What the board's pages and API read: one function per view, no HTML and no HTTP.

Each function takes a session and returns plain data (dataclasses and dicts);
``board.pages``, ``board.api`` and ``board.portal`` only shape it. Queries are
written for a store of a million URLs and 100,000 incidents: lists page by
keyset or by index, and per-view work is bounded by the view's own rows.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from board import tlp
from board.survival import Step, kaplan_meier, median_time
from store.evidence import EvidenceStore
from store.models import (
    Campaign,
    Check,
    Contact,
    Event,
    Evidence,
    FeedSubmission,
    InboxMessage,
    Incident,
    IncidentUrl,
    Notice,
    NoticeItem,
    Recipient,
    Reject,
    Site,
    Submission,
    Url,
)
from store.queries import (
    URL_COLUMNS,
    CampaignStats,
    campaign_stats,
    days_to_resolve,
    effective_tlp,
    iso,
    records_for,
)
from tocsin.errors import InvalidUrl
from tocsin.urls import normalise_url, url_hash

OPEN = ("open", "reopened")
MAX_LIST = 1000  # rows any one list returns, whatever is asked
MAX_LOG_ROWS = 300  # request-log rows shown on an incident page


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    family: str
    tlp: str
    first_seen: datetime
    last_seen: datetime
    stats: CampaignStats

    def as_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "tlp": tlp.tlp_label(self.tlp),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "sites": s.sites,
            "open": s.open,
            "notified": s.notified,
            "escalated": s.escalated,
            "escalated_by_level": {"2": s.level2, "3": s.level3},
            "resolved": s.resolved,
            "recompromised": s.recompromised,
            "median_days_to_resolve": s.median_days_to_resolve,
        }


def campaign_rows(
    session: Session, default_tlp: str, stats: dict[int, CampaignStats] | None = None
) -> list[CampaignRow]:
    """Every campaign with its counters (the campaigns page and API; cached by the board)."""
    stats = campaign_stats(session) if stats is None else stats
    return [
        CampaignRow(
            c.id,
            c.name,
            c.family or "",
            c.tlp or default_tlp,
            c.first_seen,
            c.last_seen,
            stats.get(c.id) or CampaignStats(),
        )
        for c in session.scalars(select(Campaign).order_by(Campaign.id))
    ]


# --------------------------------------------------------------------------- campaign page


@dataclass
class IncidentRow:
    id: int
    ticket: str
    host: str
    asn: int | None
    as_name: str | None
    state: str
    level: int
    family: str | None
    tlp: str
    first_seen: datetime
    first_notified: datetime | None
    resolved_at: datetime | None
    campaign: str = ""
    campaign_id: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.ticket,
            "host": self.host,
            "campaign": self.campaign,
            "asn": self.asn,
            "as_name": self.as_name,
            "state": self.state,
            "level": self.level,
            "family": self.family,
            "tlp": tlp.tlp_label(self.tlp),
            "first_seen": iso(self.first_seen),
            "first_notified": iso(self.first_notified),
            "resolved": iso(self.resolved_at),
        }


@dataclass
class NetworkRow:
    asn: int | None
    as_name: str | None
    incidents: int = 0
    open: int = 0
    resolved: int = 0
    median_days_to_clean: float | None = None
    notices: int = 0
    bounced: int = 0
    replied: int = 0

    @property
    def bounce_rate(self) -> float | None:
        return self.bounced / self.notices if self.notices else None

    @property
    def reply_rate(self) -> float | None:
        return self.replied / self.notices if self.notices else None


@dataclass
class Curves:
    """Kaplan–Meier curves of one campaign: all notified sites, and per level reached."""

    overall: list[Step]
    by_level: dict[int, list[Step]]
    notified: int
    median_days: float | None


@dataclass
class CampaignDetail:
    """A campaign's aggregates: what its page shows besides the incident list (and what
    the board caches until the store moves)."""

    iocs: dict[str, list[str]]
    curves: Curves
    networks: list[NetworkRow]
    timeline_days: list[str]
    timeline: dict[str, list[int]]
    events: list[Event]


INCIDENT_SORTS = {
    "host": Site.host,
    "state": Incident.state,
    "level": Incident.level,
    "first_seen": Incident.first_seen,
    "first_notified": Incident.first_notified,
    "resolved": Incident.resolved_at,
    "asn": Site.asn,
}


def _incident_rows(session: Session, query: Any, default_tlp: str) -> list[IncidentRow]:
    rows = session.execute(
        query.add_columns(
            Incident.id,
            Incident.public_id,
            Site.host,
            Site.asn,
            Site.as_name,
            Incident.state,
            Incident.level,
            Incident.family,
            Incident.tlp,
            Campaign.tlp,
            Incident.first_seen,
            Incident.first_notified,
            Incident.resolved_at,
            Campaign.name,
            Campaign.id,
        )
    )
    return [IncidentRow(*r[:8], r[8] or r[9] or default_tlp, *r[10:]) for r in rows]


def _incidents_query() -> Any:
    return (
        select()
        .select_from(Incident)
        .join(Site, Site.id == Incident.site_id)
        .join(Campaign, Campaign.id == Incident.campaign_id)
    )


def list_incidents(
    session: Session,
    *,
    default_tlp: str,
    campaign_id: int | None = None,
    asn: int | None = None,
    state: str | None = None,
    sort: str = "first_seen",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
    shareable_only: bool = False,
) -> tuple[list[IncidentRow], int]:
    """A page of incidents and how many match in all."""
    conditions = []
    if campaign_id is not None:
        conditions.append(Incident.campaign_id == campaign_id)
    if asn is not None:
        conditions.append(Site.asn == asn)
    if state == "open":
        conditions.append(Incident.state.in_(OPEN))
    elif state in ("resolved", "reopened"):
        conditions.append(Incident.state == state)
    if shareable_only:
        conditions.append(tlp.effective_sql(default_tlp).in_(tlp.SHAREABLE))
    base = _incidents_query().where(*conditions)
    counted = select(func.count()).select_from(Incident)
    if asn is not None:
        counted = counted.join(Site, Site.id == Incident.site_id)
    if shareable_only:
        counted = counted.join(Campaign, Campaign.id == Incident.campaign_id)
    total = session.scalar(counted.where(*conditions)) or 0
    column = INCIDENT_SORTS.get(sort, Incident.first_seen)
    order = column.desc() if descending else column.asc()
    page = base.order_by(order, Incident.id.desc() if descending else Incident.id).offset(
        max(0, offset)
    )
    rows = _incident_rows(session, page.limit(min(max(1, limit), MAX_LIST)), default_tlp)
    return rows, total


def _observations(rows: Iterable[Any], now: datetime) -> list[tuple[float, bool]]:
    """(days since the first notice, resolved) per notified incident: KM's input."""
    out = []
    for state, first_notified, resolved_at in rows:
        if first_notified is None:
            continue
        if state == "resolved" and resolved_at is not None:
            out.append(((resolved_at - first_notified).total_seconds() / 86400, True))
        else:
            out.append(((now - first_notified).total_seconds() / 86400, False))
    return out


def remediation_curves(session: Session, campaign_id: int, now: datetime) -> Curves:
    rows = session.execute(
        select(Incident.level, Incident.state, Incident.first_notified, Incident.resolved_at).where(
            Incident.campaign_id == campaign_id, Incident.first_notified.is_not(None)
        )
    ).all()
    overall = kaplan_meier(_observations((r[1:] for r in rows), now))
    by_level: dict[int, list[Step]] = {}
    for level in sorted({r[0] for r in rows if r[0] >= 1}):
        subset = (r[1:] for r in rows if r[0] == level)
        by_level[level] = kaplan_meier(_observations(subset, now))
    return Curves(overall, by_level, len(rows), median_time(overall))


def _notice_outcomes(session: Session, incident_filter: Any) -> dict[int, tuple[int, int, int]]:
    """Per ASN: (notices sent, bounced, replied) about the incidents that match."""
    replied = exists().where(InboxMessage.notice_id == Notice.id, InboxMessage.kind == "reply")
    rows = session.execute(
        select(Site.asn, Notice.id, Notice.state, replied)
        .select_from(NoticeItem)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .join(Incident, Incident.id == NoticeItem.incident_id)
        .join(Site, Site.id == Incident.site_id)
        .where(incident_filter, Notice.state.in_(("sent", "bounced")))
        .distinct()
    )
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for asn, _notice_id, state, has_reply in rows:
        c = counts[asn]
        c[0] += 1
        c[1] += state == "bounced"
        c[2] += bool(has_reply)
    return {asn: (c[0], c[1], c[2]) for asn, c in counts.items()}


def campaign_networks(session: Session, campaign_id: int) -> list[NetworkRow]:
    """The campaign's networks, most open incidents first."""
    networks: dict[int | None, NetworkRow] = {}
    days: dict[int | None, list[float]] = defaultdict(list)
    for asn, as_name, state, first_notified, first_seen, resolved_at in session.execute(
        select(
            Site.asn,
            Site.as_name,
            Incident.state,
            Incident.first_notified,
            Incident.first_seen,
            Incident.resolved_at,
        )
        .join(Site, Site.id == Incident.site_id)
        .where(Incident.campaign_id == campaign_id)
    ):
        row = networks.setdefault(asn, NetworkRow(asn, as_name))
        row.incidents += 1
        row.open += state in OPEN
        if state == "resolved" and resolved_at is not None:
            row.resolved += 1
            days[asn].append(days_to_resolve(resolved_at, first_notified, first_seen))
    for asn, (sent, bounced, replied) in _notice_outcomes(
        session, Incident.campaign_id == campaign_id
    ).items():
        if asn in networks:
            networks[asn].notices, networks[asn].bounced, networks[asn].replied = (
                sent,
                bounced,
                replied,
            )
    for asn, values in days.items():
        networks[asn].median_days_to_clean = round(statistics.median(values), 2)
    return sorted(networks.values(), key=lambda n: (-n.open, -n.incidents, n.asn or 0))


TIMELINE_KINDS = {
    "incident.opened": "opened",
    "incident.reopened": "opened",
    "incident.notified": "notified",
    "incident.escalated": "escalated",
    "incident.resolved": "resolved",
}


def campaign_timeline(
    session: Session, campaign_id: int, *, max_days: int = 120, max_events: int = 50
) -> tuple[list[str], dict[str, list[int]], list[Event]]:
    """Per day: incidents opened, notified, escalated, resolved; and the latest events."""
    in_campaign = select(Incident.id).where(Incident.campaign_id == campaign_id)
    day = func.substr(cast(Event.at, String()), 1, 10)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for when, kind, n in session.execute(
        select(day, Event.kind, func.count())
        .where(Event.incident_id.in_(in_campaign), Event.kind.in_(TIMELINE_KINDS))
        .group_by(day, Event.kind)
    ):
        counts[str(when)][TIMELINE_KINDS[kind]] += n
    days = sorted(counts)[-max_days:]
    series = {
        name: [counts[d][name] for d in days] for name in dict.fromkeys(TIMELINE_KINDS.values())
    }
    events = list(
        session.scalars(
            select(Event)
            .where(Event.incident_id.in_(in_campaign))
            .order_by(Event.id.desc())
            .limit(max_events)
        )
    )
    return days, series, events


def campaign_detail(session: Session, campaign_id: int, now: datetime) -> CampaignDetail:
    campaign = session.get(Campaign, campaign_id)
    days, series, events = campaign_timeline(session, campaign_id)
    return CampaignDetail(
        iocs=dict(campaign.iocs or {}) if campaign else {},
        curves=remediation_curves(session, campaign_id, now),
        networks=campaign_networks(session, campaign_id),
        timeline_days=days,
        timeline=series,
        events=events,
    )


# --------------------------------------------------------------------------- incident page


@dataclass
class NoticeView:
    id: int
    ticket: str | None
    recipient: str
    role: str
    kind: str
    level: int
    language: str
    state: str
    subject: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    attempts: int
    text: str
    replies: list[InboxMessage] = field(default_factory=list)


@dataclass
class CheckView:
    check: Check
    evidence: list[Evidence]
    requests: list[dict[str, Any]]
    requests_total: int
    title: str | None


@dataclass
class IncidentDetail:
    incident: Incident
    campaign: Campaign
    site: Site
    tlp: str
    urls: list[Url]
    checks: list[CheckView]
    notices: list[NoticeView]
    inbox: list[InboxMessage]
    ladder: list[tuple[Recipient, Contact]]
    events: list[Event]

    @property
    def latest(self) -> CheckView | None:
        return self.checks[0] if self.checks else None

    @property
    def screenshot(self) -> Evidence | None:
        for view in self.checks:
            for blob in view.evidence:
                if blob.kind == "screenshot":
                    return blob
        return None

    @property
    def payload_hashes(self) -> list[tuple[str, str]]:
        """(sha256 of the payload, where it was seen) for every payload of every check."""
        seen: dict[str, str] = {}
        for view in self.checks:
            if view.check.payload_sha256:
                seen.setdefault(view.check.payload_sha256, view.check.final_url or "")
            for blob in view.evidence:
                if blob.kind == "payload_zip" and blob.content_sha256:
                    seen.setdefault(blob.content_sha256, blob.note or "")
        return sorted(seen.items())


def find_incident(session: Session, ident: str) -> Incident | None:
    """By ticket id (``TCS-...``) or by number."""
    ident = (ident or "").strip()
    if ident.isdigit() and len(ident) < 12:
        return session.get(Incident, int(ident))
    return session.scalars(select(Incident).where(Incident.public_id == ident.upper())).first()


def message_text(message: bytes, limit: int = 200_000) -> str:
    """A stored notice's readable text: its headers and its text/plain part."""
    parsed = email.message_from_bytes(message[:2_000_000], policy=email.policy.default)
    head = "\n".join(f"{k}: {v}" for k, v in parsed.items() if k.lower() in _SHOWN_HEADERS)
    part = parsed.get_body(preferencelist=("plain",))
    body = ""
    if part is not None:
        try:
            body = part.get_content()
        except (LookupError, ValueError):
            body = part.get_payload(decode=True).decode("utf-8", "replace")
    return (head + "\n\n" + body)[:limit]


_SHOWN_HEADERS = {"from", "to", "cc", "reply-to", "subject", "date", "message-id"}


def request_log(store: EvidenceStore, blob: Evidence) -> tuple[list[dict[str, Any]], int]:
    """The browser's requests from a check's request-log blob (first MAX_LOG_ROWS)."""
    try:
        data = json.loads(store.get(blob.sha256))
    except (OSError, ValueError):
        return [], 0
    requests = ((data or {}).get("browser") or {}).get("requests") or []
    if not isinstance(requests, list):
        return [], 0
    return [r for r in requests[:MAX_LOG_ROWS] if isinstance(r, dict)], len(requests)


def incident_detail(
    session: Session,
    incident: Incident,
    store: EvidenceStore,
    *,
    default_tlp: str,
    max_checks: int = 5,
) -> IncidentDetail:
    campaign = session.get(Campaign, incident.campaign_id)
    site = session.get(Site, incident.site_id)
    urls = list(
        session.scalars(
            select(Url)
            .join(IncidentUrl, IncidentUrl.url_id == Url.id)
            .where(IncidentUrl.incident_id == incident.id)
            .order_by(Url.id)
            .limit(200)
        )
    )
    url_ids = [u.id for u in urls]
    checks = list(
        session.scalars(
            select(Check)
            .where(Check.url_id.in_(url_ids), Check.verdict != "offline")
            .order_by(Check.id.desc())
            .limit(max_checks)
        )
    )
    if incident.last_check_id and incident.last_check_id not in {c.id for c in checks}:
        last = session.get(Check, incident.last_check_id)
        if last is not None:
            checks.insert(0, last)
    blobs: dict[int, list[Evidence]] = defaultdict(list)
    for blob in session.scalars(
        select(Evidence).where(Evidence.check_id.in_([c.id for c in checks])).order_by(Evidence.id)
    ):
        blobs[blob.check_id].append(blob)
    views = []
    for check in checks:
        log = next((b for b in blobs[check.id] if b.kind == "requests"), None)
        requests, total = request_log(store, log) if log else ([], 0)
        title = ((check.meta or {}).get("browser") or {}).get("title")
        views.append(CheckView(check, blobs[check.id], requests, total, title))
    notices = incident_notices(session, incident.id)
    inbox = [m for n in notices for m in n.replies]
    ladder = list(
        session.execute(
            select(Recipient, Contact)
            .join(Contact, Contact.id == Recipient.contact_id)
            .where(Recipient.incident_id == incident.id)
            .order_by(Recipient.level, Recipient.id)
        ).tuples()
    )
    events = list(
        session.scalars(
            select(Event).where(Event.incident_id == incident.id).order_by(Event.id).limit(500)
        )
    )
    return IncidentDetail(
        incident=incident,
        campaign=campaign,
        site=site,
        tlp=effective_tlp(incident, campaign, default_tlp),
        urls=urls,
        checks=views,
        notices=notices,
        inbox=inbox,
        ladder=ladder,
        events=events,
    )


def incident_notices(session: Session, incident_id: int) -> list[NoticeView]:
    """Every notice that told someone of this incident, with its text and its replies."""
    notices = list(
        session.scalars(
            select(Notice)
            .join(NoticeItem, NoticeItem.notice_id == Notice.id)
            .where(NoticeItem.incident_id == incident_id)
            .order_by(Notice.id)
            .limit(200)
        ).unique()
    )
    replies: dict[int, list[InboxMessage]] = defaultdict(list)
    for message in session.scalars(
        select(InboxMessage)
        .where(InboxMessage.notice_id.in_([n.id for n in notices]))
        .order_by(InboxMessage.id)
    ):
        replies[message.notice_id].append(message)
    return [
        NoticeView(
            id=n.id,
            ticket=n.ticket,
            recipient=n.recipient,
            role=n.role,
            kind=n.kind,
            level=n.level,
            language=n.language,
            state=n.state,
            subject=n.subject,
            created_at=n.created_at,
            sent_at=n.sent_at,
            last_error=n.last_error,
            attempts=n.attempts,
            text=message_text(n.message),
            replies=replies.get(n.id, []),
        )
        for n in notices
    ]


# --------------------------------------------------------------------------- network page


@dataclass
class DeskRow:
    """One contact's track record on this network: how its abuse desk behaves."""

    email: str
    role: str
    notices: int
    bounced: int
    replied: int
    fixes: int
    median_days_to_fix: float | None


@dataclass
class NetworkDetail:
    asn: int
    as_name: str | None
    open: int
    resolved: int
    sites: int
    notices: int
    bounced: int
    replied: int
    median_days_to_resolve: float | None
    desks: list[DeskRow]

    def as_json(self) -> dict[str, Any]:
        return {
            "asn": self.asn,
            "as_name": self.as_name or "",
            "incidents": {"open": self.open, "resolved": self.resolved},
            "notices": {"sent": self.notices, "bounced": self.bounced, "replied": self.replied},
            "median_days_to_resolve": self.median_days_to_resolve,
        }


def network_detail(session: Session, asn: int) -> NetworkDetail | None:
    as_name = session.scalar(
        select(Site.as_name).where(Site.asn == asn, Site.as_name.is_not(None)).limit(1)
    )
    sites = session.scalar(select(func.count()).select_from(Site).where(Site.asn == asn)) or 0
    if not sites:
        return None
    open_, resolved = 0, 0
    days: list[float] = []
    for state, first_notified, first_seen, resolved_at in session.execute(
        select(Incident.state, Incident.first_notified, Incident.first_seen, Incident.resolved_at)
        .join(Site, Site.id == Incident.site_id)
        .where(Site.asn == asn)
    ):
        open_ += state in OPEN
        if state == "resolved" and resolved_at is not None:
            resolved += 1
            days.append(days_to_resolve(resolved_at, first_notified, first_seen))
    on_network = Incident.site_id.in_(select(Site.id).where(Site.asn == asn))
    sent, bounced, replied = _notice_outcomes(session, on_network).get(asn, (0, 0, 0))
    return NetworkDetail(
        asn=asn,
        as_name=as_name,
        open=open_,
        resolved=resolved,
        sites=sites,
        notices=sent,
        bounced=bounced,
        replied=replied,
        median_days_to_resolve=round(statistics.median(days), 2) if days else None,
        desks=_desks(session, on_network),
    )


def _desks(session: Session, on_network: Any) -> list[DeskRow]:
    """Per contact told about incidents on the network: notices, bounces, replies, fixes."""
    replied = exists().where(InboxMessage.notice_id == Notice.id, InboxMessage.kind == "reply")
    per: dict[int, dict[str, Any]] = {}
    for contact_id, email_, role, notice_id, state, has_reply in session.execute(
        select(Contact.id, Contact.email, Contact.role, Notice.id, Notice.state, replied)
        .select_from(NoticeItem)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .join(Contact, Contact.id == Notice.contact_id)
        .join(Incident, Incident.id == NoticeItem.incident_id)
        .where(on_network, Notice.state.in_(("sent", "bounced")))
        .distinct()
    ):
        row = per.setdefault(
            contact_id, {"email": email_, "role": role, "n": set(), "b": 0, "r": 0}
        )
        if notice_id not in row["n"]:
            row["n"].add(notice_id)
            row["b"] += state == "bounced"
            row["r"] += bool(has_reply)
    if not per:
        return []
    fixes = {
        c.id: (c.fixes, c.fix_seconds_total)
        for c in session.scalars(select(Contact).where(Contact.id.in_(list(per))))
    }
    desks = []
    for contact_id, row in per.items():
        n_fixes, seconds = fixes.get(contact_id, (0, 0.0))
        desks.append(
            DeskRow(
                row["email"],
                row["role"],
                len(row["n"]),
                row["b"],
                row["r"],
                n_fixes or 0,
                # The contact's mean time to fix, over all its fixes (what the store keeps).
                round(seconds / n_fixes / 86400, 2) if n_fixes else None,
            )
        )
    return sorted(desks, key=lambda d: (-d.notices, d.email))


# --------------------------------------------------------------------------- search


@dataclass
class SearchResult:
    query: str
    kind: str  # what the query was read as
    incidents: list[IncidentRow] = field(default_factory=list)
    campaigns: list[CampaignRow] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)
    urls: list[Url] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.incidents or self.campaigns or self.asns or self.urls)


def _incidents_where(session: Session, condition: Any, default_tlp: str) -> list[IncidentRow]:
    query = _incidents_query().where(condition).order_by(Incident.id.desc()).limit(100)
    return _incident_rows(session, query, default_tlp)


def search(
    session: Session, text: str, campaigns: Sequence[CampaignRow], default_tlp: str
) -> SearchResult:
    """Read the query as a ticket, an ASN, an IP, a URL, a host or a campaign name."""
    q = " ".join((text or "").split())[:2000]
    result = SearchResult(q, "nothing")
    if not q:
        return result
    upper = q.upper()
    if upper.startswith("TCS-"):
        result.kind = "ticket"
        # Two lookups by key, not one OR: PostgreSQL read every incident for the OR.
        ids = set(session.scalars(select(Incident.id).where(Incident.public_id == upper)))
        ids.update(
            session.scalars(
                select(NoticeItem.incident_id)
                .join(Notice, Notice.id == NoticeItem.notice_id)
                .where(Notice.ticket == upper)
            )
        )
        result.incidents = _incidents_where(session, Incident.id.in_(ids), default_tlp)
        return result
    if upper.removeprefix("AS").isdigit() and len(upper) < 14:
        result.kind = "asn"
        result.asns = [int(upper.removeprefix("AS"))]
        return result
    try:
        ip = str(ipaddress.ip_address(q))
    except ValueError:
        ip = None
    if ip is not None:
        result.kind = "ip"
        if session.get_bind().dialect.name == "postgresql":
            on_ip = type_coerce(Site.ips, JSONB).contains([ip])  # @>, by the GIN index
        else:
            on_ip = cast(Site.ips, String()).like(f'%"{ip}"%')
        result.incidents = _incidents_where(session, on_ip, default_tlp)
        return result
    if "/" in q or ":" in q:
        result.kind = "url"
        try:
            normal = normalise_url(q)
        except InvalidUrl:
            normal = None
        if normal is not None:
            result.urls = list(session.scalars(select(Url).where(Url.url_hash == url_hash(normal))))
            linked = select(IncidentUrl.incident_id).where(
                IncidentUrl.url_id.in_([u.id for u in result.urls])
            )
            result.incidents = _incidents_where(session, Incident.id.in_(linked), default_tlp)
        return result
    host = q.lower().rstrip(".")
    result.kind = "host or campaign"
    result.incidents = _incidents_where(
        session, or_(Site.host == host, Site.registered_domain == host), default_tlp
    )
    if not result.incidents:
        result.urls = list(session.scalars(select(Url).where(Url.host == host).limit(100)))
    needle = q.lower()
    result.campaigns = [c for c in campaigns if needle in c.name.lower()][:100]
    return result


# --------------------------------------------------------------------------- URLs and submissions


RESEARCHER_WINDOW = 10_000  # URL ids one researcher page looks through at most


def _visible_ids(session: Session, name: str, default_tlp: str, low: int, high: int) -> list[int]:
    """URL ids in (low, high] a researcher may see: their own submissions' and those on a
    shareable incident. Each read is one index range over the window; the labels are
    looked up by key, in steps: joined in one statement, PostgreSQL's planner hashed all
    100,000 incidents to keep the thousand the window names (50 to 75 ms a page)."""
    own = session.scalars(
        select(FeedSubmission.url_id)
        .join(Submission, Submission.run_id == FeedSubmission.run_id)
        .where(
            Submission.submitter == name,
            FeedSubmission.url_id > low,
            FeedSubmission.url_id <= high,
        )
    )
    linked = session.execute(
        select(IncidentUrl.url_id, IncidentUrl.incident_id).where(
            IncidentUrl.url_id > low, IncidentUrl.url_id <= high
        )
    ).all()
    incidents = dict(
        session.execute(
            select(Incident.id, func.coalesce(Incident.tlp, Campaign.tlp))
            .join(Campaign, Campaign.id == Incident.campaign_id)
            .where(Incident.id.in_({incident_id for _, incident_id in linked}))
        ).all()
    )
    shared = (
        url_id
        for url_id, incident_id in linked
        if tlp.shareable(incidents.get(incident_id) or default_tlp)
    )
    return sorted({*own, *shared})


CANDIDATES = 2_000  # ids a filtered URL page takes from its driving filter at most


def _campaign_ids(session: Session, name: str, low: int) -> list[int]:
    """The first URL ids after ``low`` in the campaign ``name`` (its incidents', or
    ingested for it), in order; each side by index, cut before they are merged."""
    linked = session.scalars(
        select(IncidentUrl.url_id)
        .join(Incident, Incident.id == IncidentUrl.incident_id)
        .join(Campaign, Campaign.id == Incident.campaign_id)
        .where(Campaign.name == name, IncidentUrl.url_id > low)
        .order_by(IncidentUrl.url_id)
        .limit(CANDIDATES)
    )
    hinted = session.scalars(
        select(Url.id)
        .where(Url.campaign_hint == name, Url.id > low)
        .order_by(Url.id)
        .limit(CANDIDATES)
    )
    return sorted({*linked, *hinted})[:CANDIDATES]


def _submission_ids(session: Session, public_id: str, low: int) -> list[int]:
    ids = session.scalars(
        select(FeedSubmission.url_id)
        .join(Submission, Submission.run_id == FeedSubmission.run_id)
        .where(Submission.public_id == public_id, FeedSubmission.url_id > low)
    )
    return sorted(set(ids))[:CANDIDATES]


def list_urls(
    session: Session,
    *,
    default_tlp: str,
    verdict: str | None = None,
    campaign: str | None = None,
    asn: int | None = None,
    submission: str | None = None,
    after: int = 0,
    limit: int = 100,
    researcher: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of export records by URL id after ``after``; and the next cursor.

    A selective filter (a campaign, a submission, what a researcher may see) gives at
    most ``CANDIDATES`` ids in order, which the other filters then thin, so no filter
    walks a million URLs. A page can end short with a cursor: follow it until ``next``
    is null.
    """
    limit = min(max(1, limit), MAX_LIST)
    query = select(*URL_COLUMNS).where(Url.id > after)
    if verdict:
        query = query.where(Url.verdict == verdict)
    if asn is not None:
        query = query.where(Url.site_id.in_(select(Site.id).where(Site.asn == asn)))
    candidates: list[int] | None = None
    exhausted_at: int | None = None  # where the candidates ran out, if more may follow
    sources = []
    if campaign:
        sources.append(_campaign_ids(session, campaign, after))
    if submission:
        sources.append(_submission_ids(session, submission, after))
    for ids in sources:
        candidates = ids if candidates is None else sorted(set(candidates) & set(ids))
        if len(ids) >= CANDIDATES:  # cut: more may follow the last one taken
            exhausted_at = min(ids[-1], exhausted_at or ids[-1])
    if researcher is not None:
        # A window of URL ids is looked through, whatever the researcher may see.
        window = after + RESEARCHER_WINDOW
        visible = _visible_ids(session, researcher, default_tlp, after, window)
        candidates = visible if candidates is None else sorted(set(candidates) & set(visible))
        if session.scalar(select(Url.id).where(Url.id > window).limit(1)) is not None:
            exhausted_at = min(window, exhausted_at or window)
    if candidates is None:
        urls = session.execute(query.order_by(Url.id).limit(limit + 1)).all()
    else:
        if exhausted_at is not None:
            candidates = [i for i in candidates if i <= exhausted_at]
        urls = []
        for start in range(0, len(candidates), 900):  # no statement carries thousands
            urls += session.execute(
                query.where(Url.id.in_(candidates[start : start + 900]))
                .order_by(Url.id)
                .limit(limit + 1 - len(urls))
            ).all()
            if len(urls) > limit:
                break
    more = len(urls) > limit
    urls = urls[:limit]
    records = list(records_for(session, urls, default_tlp))
    if more:
        return records, urls[-1].id
    return records, exhausted_at


@dataclass
class SubmissionView:
    submission: Submission
    records: list[dict[str, Any]]
    notified: dict[str, list[dict[str, Any]]]
    rejected: list[dict[str, str]]
    next_line: int | None = None


def submission_rejects(
    session: Session, run_id: int, lines: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """Each rejected line with its reason (the line as sent when ``lines`` are given)."""
    out = []
    for line_no, reason, raw in session.execute(
        select(Reject.line_no, Reject.reason, Reject.raw)
        .where(Reject.run_id == run_id)
        .order_by(Reject.line_no)
    ):
        if lines is not None and 0 < line_no <= len(lines):
            line = lines[line_no - 1]
        else:
            line = bytes(raw).decode("utf-8", "replace")
        out.append({"line": line, "reason": reason})
    return out


def submission_view(
    session: Session,
    submission: Submission,
    default_tlp: str,
    *,
    after_line: int = 0,
    limit: int = 200,
) -> SubmissionView:
    """What became of each URL of a submission, and whom tocsin told about it, when:
    a page of its lines after ``after_line`` (``next_line`` says where the next starts)."""
    rows = session.execute(
        select(FeedSubmission.line_no, FeedSubmission.url_id)
        .where(FeedSubmission.run_id == submission.run_id, FeedSubmission.line_no > after_line)
        .order_by(FeedSubmission.line_no)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    url_ids = [url_id for _, url_id in rows]
    urls_by_id = {url.id: url for url in session.scalars(select(Url).where(Url.id.in_(url_ids)))}
    ordered = [urls_by_id[i] for i in dict.fromkeys(url_ids) if i in urls_by_id]
    records = list(records_for(session, ordered, default_tlp))
    tickets = {r["incident"]["id"] for r in records if r["incident"]}
    notified: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if tickets:
        for ticket, recipient, role, level, sent_at, state in session.execute(
            select(
                Incident.public_id,
                Notice.recipient,
                Notice.role,
                Notice.level,
                Notice.sent_at,
                Notice.state,
            )
            .join(NoticeItem, NoticeItem.incident_id == Incident.id)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(Incident.public_id.in_(tickets), Notice.kind != "digest")
            .order_by(Notice.id)
        ):
            notified[ticket].append(
                {
                    "recipient": recipient,
                    "role": role,
                    "level": level,
                    "state": state,
                    "sent": iso(sent_at),
                }
            )
    return SubmissionView(
        submission,
        records,
        dict(notified),
        submission_rejects(session, submission.run_id) if not after_line else [],
        rows[-1][0] if more and rows else None,
    )


# --------------------------------------------------------------------------- portal


def contact_incidents(session: Session, contact_id: int, default_tlp: str) -> list[IncidentRow]:
    """The incidents a contact was told about (the portal shows these, and only these)."""
    told = select(NoticeItem.incident_id).where(NoticeItem.contact_id == contact_id)
    query = _incidents_query().where(Incident.id.in_(told)).order_by(Incident.id.desc()).limit(500)
    return _incident_rows(session, query, default_tlp)


def csirt_package_incidents(session: Session, contact_id: int, limit: int = 500) -> list[int]:
    """The incidents a contact may fetch the evidence package of through the portal: those it
    was told about as the ladder's national CSIRT (role ``cert``). Any other recipient: none."""
    told = select(NoticeItem.incident_id).where(NoticeItem.contact_id == contact_id)
    query = (
        select(Recipient.incident_id)
        .where(
            Recipient.contact_id == contact_id,
            Recipient.role == "cert",
            Recipient.incident_id.in_(told),
        )
        .distinct()
        .order_by(Recipient.incident_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def evidence_of_incidents(
    session: Session, incident_ids: Sequence[int], sha256: str
) -> Evidence | None:
    """The evidence row for ``sha256`` if it belongs to a check of one of these incidents."""
    linked = select(IncidentUrl.url_id).where(IncidentUrl.incident_id.in_(list(incident_ids)))
    return session.scalars(
        select(Evidence)
        .join(Check, Check.id == Evidence.check_id)
        .where(Evidence.sha256 == sha256, and_(Check.url_id.in_(linked)))
        .limit(1)
    ).first()

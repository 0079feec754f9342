"""The contact policy: whom to tell at each escalation level, in which language, and why.

Per incident, the ladder is a list of rungs (``Recipient`` rows). The levels
come from ``enrich.ladder`` (default: hosting abuse + site owner, then the
registrar, then the national CSIRT). Empty levels are skipped, so the levels
an incident climbs are always 1, 2, 3... with someone to tell at each; the
rung's ``role`` says who it is.

A contact's history (notices sent, replies, bounces, fixes and time to fix;
the notifier keeps the counters) is read here by :func:`standing`, which the
ladder uses to order a level and the board uses to rank contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from enrich import language
from store.models import Contact

# --- contact history ----------------------------------------------------------------------

MIN_NOTICES = 3  # fewer notices than this: too early to judge


@dataclass(frozen=True)
class Standing:
    """How a contact has answered us so far."""

    label: str  # responsive | slow | black-hole | bouncing | unknown
    score: float  # higher is better; for ordering and ranking
    notices: int
    reply_rate: float
    fix_rate: float
    bounce_rate: float
    mean_days_to_fix: float | None


def standing(contact: Contact) -> Standing:
    """Read a contact's counters.

    - ``bouncing``: the address bounced (the last delivery failed permanently), or
      at least half our notices bounced;
    - ``unknown``: fewer than three notices, nothing to judge by;
    - ``responsive``: it replies to a third of our notices, or half its sites get fixed;
    - ``black-hole``: three or more notices, no reply, no fix;
    - ``slow``: everything in between.
    """
    sent = contact.notices_sent or 0
    replies = contact.replies or 0
    bounces = contact.bounces or 0
    fixes = contact.fixes or 0
    reply_rate = replies / sent if sent else 0.0
    fix_rate = min(fixes / sent, 1.0) if sent else 0.0
    bounce_rate = min(bounces / sent, 1.0) if sent else (1.0 if bounces else 0.0)
    mean_days = (contact.fix_seconds_total or 0.0) / fixes / 86400 if fixes else None
    if contact.bounced or (bounces and bounce_rate >= 0.5):
        label = "bouncing"
    elif sent < MIN_NOTICES:
        label = "unknown"
    elif reply_rate >= 1 / 3 or fix_rate >= 0.5:
        label = "responsive"
    elif replies == 0 and fixes == 0:
        label = "black-hole"
    else:
        label = "slow"
    speed = 0.0 if mean_days is None else 1.0 / (1.0 + mean_days)
    score = 2 * fix_rate + reply_rate + speed - 2 * bounce_rate
    if label == "unknown":
        score += 0.5  # untested beats known-bad, loses to known-good
    return Standing(label, round(score, 4), sent, reply_rate, fix_rate, bounce_rate, mean_days)


def ranked_contacts(
    session: Session, *, role: str | None = None, limit: int = 100
) -> list[tuple[Contact, Standing]]:
    """Contacts ranked from most responsive to black holes (for the board)."""
    query = select(Contact).where(Contact.notices_sent > 0)
    if role:
        query = query.where(Contact.role == role)
    pairs = [(c, standing(c)) for c in session.scalars(query)]
    pairs.sort(key=lambda p: (-p[1].score, p[0].email))
    return pairs[:limit]


# --- the ladder -------------------------------------------------------------------------------


@dataclass
class Candidate:
    """A contact responsible for a site, as enrichment found it."""

    contact: Contact
    role: str
    source: str
    confidence: float
    detail: str = ""  # where exactly, for the reason


@dataclass(frozen=True)
class SiteContext:
    """What the ladder needs to know about the site and its network."""

    host: str
    registered_domain: str | None = None
    ips: tuple[str, ...] = ()
    asn: int | None = None
    as_name: str | None = None
    prefix: str | None = None
    network_name: str | None = None
    network_org: str | None = None
    network_country: str | None = None
    registrar: str | None = None
    registrar_iana_id: str | None = None
    cdn: str | None = None
    cdn_evidence: str | None = None
    shared_hosting: str | None = None  # the provider's name when it is shared hosting
    shared_evidence: str | None = None


@dataclass(frozen=True)
class Rung:
    """One planned ``Recipient`` row."""

    level: int
    contact_id: int
    email: str
    role: str
    reason: str
    language: str
    note: str | None
    cdn: str | None
    confidence: float


def _network_words(site: SiteContext) -> str:
    parts = []
    if site.network_org or site.network_name:
        parts.append(site.network_org or site.network_name or "")
    if site.prefix:
        parts.append(site.prefix)
    if site.asn:
        parts.append(f"AS{site.asn}" + (f" {site.as_name}" if site.as_name else ""))
    return ", ".join(p for p in parts if p)


def _reason(candidate: Candidate, site: SiteContext) -> str:
    role = candidate.role
    ips = ", ".join(site.ips[:3]) or "its address"
    if role == "hosting":
        where = _network_words(site)
        text = f"abuse contact of the network hosting {site.host} ({ips}"
        text += f"; {where})" if where else ")"
    elif role == "owner":
        if candidate.source == "rfc2142":
            text = f"guessed RFC 2142 mailbox at {site.registered_domain or site.host}"
        else:
            text = f"the site's own security.txt contact ({candidate.detail or site.host})"
    elif role == "registrar":
        who = site.registrar or "the registrar"
        if site.registrar_iana_id:
            who += f", IANA id {site.registrar_iana_id}"
        text = f"abuse contact of the registrar of {site.registered_domain or site.host} ({who})"
    else:
        country = candidate.detail or site.network_country or "?"
        text = f"national CSIRT for {country}, the country of the hosting network"
    return f"{text}; source {candidate.source}"


def _note(candidate: Candidate, site: SiteContext) -> tuple[str | None, str | None]:
    """(note, cdn) for a rung: CDN fronts and shared hosting change what the notice says."""
    notes: list[str] = []
    cdn: str | None = None
    if candidate.role == "hosting" and site.cdn:
        cdn = site.cdn[:100]
        notes.append(
            f"{site.host} is served through the CDN {site.cdn} ({site.cdn_evidence}); "
            "the CDN can forward this to its customer or name the origin host, "
            "but the compromised files sit on the origin server"
        )
    if candidate.role == "hosting" and site.shared_hosting:
        notes.append(
            f"shared hosting at {site.shared_hosting} ({site.shared_evidence}): "
            f"please act on the customer account of {site.host}, "
            "not on the shared address other sites use"
        )
    if candidate.source == "rfc2142":
        notes.append("a guessed address (RFC 2142): it may not exist")
    if candidate.contact.id is not None:
        label = standing(candidate.contact).label
        if label in ("black-hole", "bouncing"):
            notes.append(f"this contact's history: {label}")
    return ("; ".join(notes) or None), cdn


def build_ladder(
    site: SiteContext,
    candidates: Sequence[Candidate],
    levels: Sequence[Sequence[str]],
    *,
    default_language: str = "en",
) -> list[Rung]:
    """The ordered ladder for one incident on ``site``.

    ``levels`` is ``enrich.ladder``: level N notifies the roles at position N-1.
    Within a level, candidates keep the role order given, then go by confidence
    and by their track record; a mailbox appears once per level.
    """
    rungs: list[Rung] = []
    level = 0
    for roles in levels:
        chosen: list[Rung] = []
        seen: set[str] = set()
        for role in roles:
            pool = [c for c in candidates if c.role == role]
            pool.sort(key=lambda c: (-c.confidence, -standing(c.contact).score, c.contact.email))
            for candidate in pool:
                email = candidate.contact.email.lower()
                if email in seen:
                    continue
                seen.add(email)
                preferred = candidate.contact.languages or (
                    [candidate.contact.language] if candidate.contact.language else []
                )
                choice = language.choose(
                    preferred,
                    host=site.registered_domain or site.host,
                    network_country=site.network_country,
                    default=default_language,
                )
                note, cdn = _note(candidate, site)
                chosen.append(
                    Rung(
                        level=level + 1,
                        contact_id=candidate.contact.id,
                        email=candidate.contact.email,
                        role=role,
                        reason=_reason(candidate, site) + f"; language by {choice.why}",
                        language=choice.language,
                        note=note,
                        cdn=cdn,
                        confidence=candidate.confidence,
                    )
                )
        if chosen:
            level += 1
            rungs.extend(chosen)
    return rungs


def roles_in(levels: Iterable[Iterable[str]]) -> set[str]:
    return {role for roles in levels for role in roles}

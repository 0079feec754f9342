"""The incident's state machine: the one place its state and level change.

An incident is a compromised site within a campaign::

    (new) --open--> open --resolve--> resolved --reopen--> reopened --resolve--> resolved ...
                     |                                        |
                     +---- escalate: level 1 -> 2 -> 3 -------+

``level`` 0 means no notice yet; 1, 2 and 3 follow the contact ladder (owner and
hosting, then registrar, then the national CSIRT). ``episode`` counts
re-compromises: a reopened incident is notified afresh, once per episode.

The crawl stage calls :func:`record_malicious`; the notifier and the re-check
call :func:`mark_notified`, :func:`escalate` and :func:`resolve`. Every change
appends an event in the caller's transaction, stamped with the run's clock.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from store import eventlog
from store.models import (
    Campaign,
    Check,
    Contact,
    Event,
    Incident,
    IncidentUrl,
    Notice,
    NoticeItem,
    Site,
    Url,
)
from store.types import UTCDateTime

OPEN_STATES = ("open", "reopened")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: ticket ids get read aloud


def new_public_id(prefix: str = "TCS") -> str:
    """An unguessable, readable id such as ``TCS-7K3M-9QXP`` (``SUB-`` for submissions)."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{prefix}-{body[:4]}-{body[4:]}"


def is_open(incident: Incident) -> bool:
    return incident.state in OPEN_STATES


def episode(incident: Incident) -> int:
    """Which compromise of this site in this campaign we are in (0 for the first)."""
    return incident.reopen_count


def record_malicious(
    session: Session, *, site: Site, campaign: Campaign, url: Url, check: Check, now: datetime
) -> Incident:
    """Open, refresh or reopen the incident for a malicious check of ``url``.

    A site has one open incident whatever its checks find: a check of another
    family (a payload that changes between visits, a second URL) joins the
    open incident and adds its family, so no second ticket and no second first
    notice; a check named into a manual campaign (``ingest --campaign``) moves it
    there. A resolved incident found malicious again is reopened and counted as a
    re-compromise; its level starts again at 0 so the ladder restarts.
    """
    incident = open_incident_of(session, site.id)
    in_campaign = None
    if incident is None or (campaign.manual and incident.campaign_id != campaign.id):
        in_campaign = session.scalars(
            select(Incident).where(Incident.site_id == site.id, Incident.campaign_id == campaign.id)
        ).one_or_none()
    named = campaign.manual and in_campaign is None  # an operator named this campaign
    if incident is not None and named and incident.campaign_id != campaign.id:
        eventlog.record(
            session,
            now,
            "incident.moved",
            incident_id=incident.id,
            from_campaign=incident.campaign_id,
            to_campaign=campaign.id,
            check_id=check.id,
        )
        incident.campaign_id = campaign.id
    incident = incident or in_campaign
    if incident is None:
        incident = Incident(
            public_id=new_public_id(),
            site_id=site.id,
            campaign_id=campaign.id,
            family=check.family,
            families=[check.family] if check.family else [],
            state="open",
            level=0,
            first_seen=now,
            last_confirmed=now,
            last_check_id=check.id,
            recheck_index=0,
            reopen_count=0,
            meta={},
        )
        session.add(incident)
        session.flush()
        eventlog.record(
            session,
            now,
            "incident.opened",
            incident_id=incident.id,
            site=site.host,
            campaign=campaign.name,
            family=check.family,
            check_id=check.id,
        )
    elif incident.state == "resolved":
        incident.state = "reopened"
        incident.reopen_count += 1
        incident.level = 0
        incident.resolved_at = None
        incident.first_notified = None
        incident.level_reached_at = None
        incident.followup_level = None
        incident.next_recheck_at = None
        incident.recheck_index = 0
        eventlog.record(
            session,
            now,
            "incident.reopened",
            incident_id=incident.id,
            episode=incident.reopen_count,
            check_id=check.id,
            recompromise=True,
        )
    incident.last_confirmed = max(incident.last_confirmed, now)
    incident.last_check_id = check.id
    incident.family = incident.family or check.family
    add_family(session, incident, check, now)
    link = session.scalars(
        select(IncidentUrl).where(
            IncidentUrl.incident_id == incident.id, IncidentUrl.url_id == url.id
        )
    ).one_or_none()
    if link is None:
        session.add(IncidentUrl(incident_id=incident.id, url_id=url.id, added_at=now))
    return incident


def open_incident_of(session: Session, site_id: int) -> Incident | None:
    """The site's open incident (the oldest, should an older store hold two)."""
    return session.scalars(
        select(Incident)
        .where(Incident.site_id == site_id, Incident.state.in_(OPEN_STATES))
        .order_by(Incident.id)
        .limit(1)
    ).first()


def add_family(session: Session, incident: Incident, check: Check, now: datetime) -> bool:
    """Note a family the incident had not seen yet (``family`` stays the first one)."""
    families = list(incident.families or ([incident.family] if incident.family else []))
    if not check.family or check.family in families:
        if incident.families is None:
            incident.families = families
        return False
    incident.families = [*families, check.family]  # a new list: JSON columns track assignment
    if len(families) > 0:
        eventlog.record(
            session,
            now,
            "incident.family_added",
            incident_id=incident.id,
            family=check.family,
            check_id=check.id,
        )
    return True


def confirm(session: Session, incident: Incident, check: Check, now: datetime) -> None:
    """A re-check found the site still malicious."""
    incident.last_confirmed = max(incident.last_confirmed, now)
    incident.last_check_id = check.id
    eventlog.record(session, now, "incident.confirmed", incident_id=incident.id, check_id=check.id)


def resolve(
    session: Session, incident: Incident, now: datetime, *, reason: str, check_id: int | None
) -> None:
    """The site is clean or offline: close the incident and record time to remediation."""
    if not is_open(incident):
        return
    incident.state = "resolved"
    incident.resolved_at = now
    incident.next_recheck_at = None
    incident.recheck_requested_at = None
    since = incident.first_notified or incident.first_seen
    _credit_fix(session, incident, now)
    eventlog.record(
        session,
        now,
        "incident.resolved",
        incident_id=incident.id,
        reason=reason,
        check_id=check_id,
        level=incident.level,
        seconds_to_remediation=(now - since).total_seconds(),
        notified=incident.first_notified is not None,
    )


def mark_notified(
    session: Session,
    incident: Incident,
    level: int,
    now: datetime,
    *,
    recheck_after: timedelta | None = None,
) -> None:
    """The notices of ``level`` went out: the incident is at that level from now.

    The first notice also starts the re-check schedule (``recheck_after`` is
    the schedule's first step, counted from now).
    """
    if incident.first_notified is None:
        incident.first_notified = now
        if recheck_after is not None and is_open(incident):
            incident.recheck_index = 0
            incident.next_recheck_at = now + recheck_after
    if level > incident.level:
        incident.level = level
        incident.level_reached_at = now
    eventlog.record(session, now, "incident.notified", incident_id=incident.id, level=level)


def mark_notified_many(
    session: Session,
    notified: list[tuple[int, int]],
    now: datetime,
    *,
    recheck_after: timedelta | None = None,
) -> None:
    """:func:`mark_notified` for many (incident id, level) pairs, set-based.

    The same state changes and the same ``incident.notified`` events, in a few
    statements: a run marks thousands of incidents at once. The caller holds
    the rows (it selected them ``FOR UPDATE``); ORM copies in the session are
    not refreshed.
    """
    if not notified:
        return
    by_level: dict[int, set[int]] = {}
    for incident_id, level in notified:
        by_level.setdefault(level, set()).add(incident_id)
    # One UPDATE per level and chunk, each row changed once: SET reads the row as it
    # was, so the first notice's fields and the level move together. (Two statements
    # wrote every row twice; on PostgreSQL each write is a new row version and index
    # entries, the largest cost of marking.)
    unnotified = Incident.first_notified.is_(None)
    starts = and_(unnotified, Incident.state.in_(OPEN_STATES))
    at = literal(now, UTCDateTime())  # a bare datetime in an expression skips the column type
    for level, members in sorted(by_level.items()):
        below = Incident.level < level
        values: dict[str, Any] = {
            "first_notified": func.coalesce(Incident.first_notified, at),
            "level": case((below, level), else_=Incident.level),
            "level_reached_at": case((below, at), else_=Incident.level_reached_at),
        }
        if recheck_after is not None:
            values["recheck_index"] = case((starts, 0), else_=Incident.recheck_index)
            values["next_recheck_at"] = case(
                (starts, literal(now + recheck_after, UTCDateTime())),
                else_=Incident.next_recheck_at,
            )
        level_ids = sorted(members)
        for start in range(0, len(level_ids), 900):
            session.execute(
                update(Incident)
                .where(Incident.id.in_(level_ids[start : start + 900]), or_(unnotified, below))
                .values(**values),
                execution_options={"synchronize_session": False},
            )
    session.execute(
        insert(Event),
        [
            {
                "at": now,
                "kind": "incident.notified",
                "incident_id": incident_id,
                "actor": "tocsin",
                "data": {"level": level},
            }
            for incident_id, level in notified
        ],
    )


def escalate(
    session: Session,
    incident: Incident,
    now: datetime,
    *,
    reason: str,
    to_level: int | None = None,
    followups: bool = True,
) -> int:
    """Move up the ladder (to ``to_level``, default the next level); the notifier
    then sends that level's notices. A level with nobody to tell is skipped by
    passing the next level that has someone. ``followups=False`` (a bounce): the
    contacts already told are not written to again for this move, only the new level."""
    before = incident.level
    if followups:
        incident.followup_level = None
    elif incident.followup_level is None:
        incident.followup_level = max(before, 1)
    incident.level = max(to_level if to_level is not None else before + 1, before + 1)
    incident.level_reached_at = now
    eventlog.record(
        session,
        now,
        "incident.escalated",
        incident_id=incident.id,
        from_level=before,
        to_level=incident.level,
        reason=reason,
        followups=followups,
    )
    return incident.level


def request_recheck(session: Session, incident: Incident, now: datetime, *, actor: str) -> bool:
    """Queue a re-check for the next ``tocsin recheck`` (asked for on the board or the
    portal). The request alone changes nothing else: only the re-check's verdict
    resolves. False when the incident is not open or a request is already queued."""
    if not is_open(incident) or incident.recheck_requested_at is not None:
        return False
    incident.recheck_requested_at = now
    eventlog.record(
        session, now, "incident.recheck_requested", incident_id=incident.id, actor=actor
    )
    return True


def set_tlp(
    session: Session, target: Incident | Campaign, label: str | None, now: datetime, *, actor: str
) -> None:
    """An analyst labels a campaign or an incident (None: back to the default)."""
    before, target.tlp = target.tlp, label
    kind = "incident" if isinstance(target, Incident) else "campaign"
    eventlog.record(
        session,
        now,
        f"{kind}.tlp",
        incident_id=target.id if kind == "incident" else None,
        subject=(kind, target.id),
        actor=actor,
        before=before,
        after=label,
    )


def schedule_recheck(
    session: Session, incident: Incident, now: datetime, schedule: list[timedelta]
) -> datetime | None:
    """Set the next re-check: the first step of ``schedule`` (counted from the first
    notice) that lies after ``now``; past the last step, every last-step interval."""
    incident.recheck_requested_at = None
    if not is_open(incident) or not schedule:
        incident.next_recheck_at = None
        return None
    start = incident.first_notified or incident.first_seen
    for index, step in enumerate(schedule):
        if start + step > now:
            incident.recheck_index = index
            incident.next_recheck_at = start + step
            return incident.next_recheck_at
    last = schedule[-1]
    extra = int((now - start - last) / last) + 1 if last.total_seconds() > 0 else 1
    incident.recheck_index = len(schedule) + extra - 1
    incident.next_recheck_at = start + last * (extra + 1)
    return incident.next_recheck_at


def _credit_fix(session: Session, incident: Incident, now: datetime) -> None:
    """Contact history: each contact told of this episode gets a fix and its time to fix."""
    rows = session.execute(
        select(NoticeItem.contact_id, Notice.sent_at)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .where(
            NoticeItem.incident_id == incident.id,
            NoticeItem.episode == incident.reopen_count,
            Notice.state == "sent",
        )
    ).all()
    first_told: dict[int, datetime] = {}
    for contact_id, sent_at in rows:
        if sent_at is not None and (
            contact_id not in first_told or sent_at < first_told[contact_id]
        ):
            first_told[contact_id] = sent_at
    for contact_id in sorted(first_told):
        contact = session.get(Contact, contact_id, with_for_update=False)
        if contact is None:
            continue
        contact.fixes = (contact.fixes or 0) + 1
        contact.fix_seconds_total = (contact.fix_seconds_total or 0.0) + max(
            (now - first_told[contact_id]).total_seconds(), 0.0
        )

"""The escalation policy: when an incident moves up its contact ladder.

- Still malicious at a re-check, ``escalation.grace`` after it reached its
  level: the next level that has a contact we can write to.
- A permanent failure (a 5xx at send, or a DSN in the inbox) for a notice at
  the incident's current level: the next level at once.
- No usable contact at the current level at all (all bounced or suppressed):
  the next level, so an incident is never stuck behind a dead address.

State changes go through :func:`store.incidents.escalate`, the one place the
level changes; this module only decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, false, or_, select
from sqlalchemy.orm import Session

from notifier.due import TARGET, usable_rungs
from store.incidents import OPEN_STATES, escalate, is_open
from store.models import Contact, Incident, Recipient, Site


def next_level(session: Session, incident: Incident, above: int) -> int | None:
    """The lowest usable ladder level strictly above ``above``, if any."""
    return next((r for r in usable_rungs(session, incident.id) if r > above), None)


def escalate_after_failure(
    session: Session, incident: Incident, failed_level: int, now: datetime, *, reason: str
) -> int | None:
    """A notice at ``failed_level`` bounced: move on at once, unless that level is history."""
    if not is_open(incident) or failed_level < max(incident.level, 1):
        return None
    target = next_level(session, incident, failed_level)
    if target is None:
        return None
    # The bounced role moves on; those reached at this level owe no follow-up for it.
    return escalate(session, incident, now, reason=reason, to_level=target, followups=False)


def escalate_if_due(
    session: Session, incident: Incident, now: datetime, grace: timedelta
) -> int | None:
    """Still malicious: escalate when the grace at the current level is over."""
    if not is_open(incident) or incident.level < 1:
        return None
    reached = incident.level_reached_at or incident.first_notified
    if reached is None or now - reached < grace:
        return None
    target = next_level(session, incident, incident.level)
    if target is None:
        return None
    return escalate(
        session, incident, now, reason="grace expired, still malicious", to_level=target
    )


def advance_dead_ends(session: Session, now: datetime, patience: timedelta) -> int:
    """Escalate open incidents whose current level has no usable contact left.

    A site whose enrichment is incomplete (an RDAP server down, say) waits
    ``patience`` for a later run to find its contacts before its incident skips
    the level: an unanswered lookup is not a dead address.
    """

    def usable(level_test):
        return exists(
            select(Recipient.id)
            .join(Contact, Contact.id == Recipient.contact_id)
            .where(
                Recipient.incident_id == Incident.id,
                level_test,
                Contact.bounced == false(),
                Contact.suppressed == false(),
            )
        )

    low = usable(Recipient.level <= TARGET)
    high = usable(Recipient.level > TARGET)
    moved = 0
    settled = or_(Site.enrich_state == "done", Site.first_seen <= now - patience)
    stuck = session.scalars(
        select(Incident)
        .join(Site, Site.id == Incident.site_id)
        .where(Incident.state.in_(OPEN_STATES), ~low, high, settled)
        .order_by(Incident.id)
    )
    for incident in list(stuck):
        current = max(incident.level, 1)
        target = next_level(session, incident, current)
        if target is not None:
            escalate(
                session,
                incident,
                now,
                reason=f"no usable contact at level {current}",
                to_level=target,
            )
            moved += 1
    return moved

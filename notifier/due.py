"""What is due: the (incident, contact, level, episode) items not notified yet.

An open incident at ladder level L (0 before its first notice counts as 1)
owes a notice at level L to every usable contact on its ladder at level L or
below: a first notice to the ones never told, a follow-up to the ones told at
an earlier level, unless a bounce moved the incident up (``followup_level``):
a bounce moves the bounced role on, not the ones who were reached.
``notice_items``' unique key on (incident, contact, level,
episode) makes each of those at most once, ever; this query finds the ones
that are not there yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, case, exists, false, or_, select
from sqlalchemy.orm import Session

from store.incidents import OPEN_STATES
from store.models import Contact, Incident, NoticeItem, Recipient

TARGET = case((Incident.level < 1, 1), else_=Incident.level)


@dataclass(frozen=True)
class DueItem:
    incident_id: int
    contact_id: int
    level: int  # the level this notice is sent at (the incident's)
    episode: int
    rung: int  # the contact's own level on the ladder
    role: str
    language: str
    note: str | None
    cdn: str | None


def _due_query(by_contact: bool = False):
    already = exists().where(
        NoticeItem.incident_id == Recipient.incident_id,
        NoticeItem.contact_id == Recipient.contact_id,
        NoticeItem.level == TARGET,
        NoticeItem.episode == Incident.reopen_count,
    )
    # Told in this episode at any level: owed a follow-up only up to ``followup_level``
    # (set when a bounce moved the incident on for the bounced role alone).
    told = exists().where(
        NoticeItem.incident_id == Recipient.incident_id,
        NoticeItem.contact_id == Recipient.contact_id,
        NoticeItem.episode == Incident.reopen_count,
    )
    followups_owed = or_(
        Incident.followup_level.is_(None), Incident.followup_level >= TARGET, ~told
    )
    return (
        select(
            Recipient.incident_id,
            Recipient.contact_id,
            TARGET.label("target"),
            Incident.reopen_count,
            Recipient.level,
            Recipient.role,
            Recipient.language,
            Recipient.note,
            Recipient.cdn,
        )
        .join(Incident, Incident.id == Recipient.incident_id)
        .join(Contact, Contact.id == Recipient.contact_id)
        .where(
            # Per chunk of contacts the plan must start from their ladder rungs, not
            # from every open incident: ``state || ''`` keeps SQLite (which has no
            # statistics) off the state index; PostgreSQL plans it the same either way.
            (Incident.state.concat("") if by_contact else Incident.state).in_(OPEN_STATES),
            Recipient.level <= TARGET,
            Contact.bounced == false(),
            Contact.suppressed == false(),
            ~already,
            followups_owed,
        )
    )


def due_contact_ids(session: Session) -> list[int]:
    """Contacts that have something due, in id order (the order runs claim them in)."""
    inner = _due_query().subquery()
    return list(session.scalars(select(inner.c.contact_id).distinct().order_by(inner.c.contact_id)))


def due_items(
    session: Session, contact_ids: Iterable[int], exclude: Iterable[int] = ()
) -> list[DueItem]:
    """The due items of these contacts, one per (incident, contact), lowest rung kept."""
    ids = sorted(set(contact_ids))
    excluded = set(exclude)
    best: dict[tuple[int, int], DueItem] = {}
    for start in range(0, len(ids), 500):
        query = _due_query(by_contact=True).where(
            Recipient.contact_id.in_(ids[start : start + 500])
        )
        for row in session.execute(query):
            if row.incident_id in excluded:
                continue
            item = DueItem(
                incident_id=row.incident_id,
                contact_id=row.contact_id,
                level=row.target,
                episode=row.reopen_count,
                rung=row.level,
                role=row.role,
                language=row.language or "en",
                note=row.note,
                cdn=row.cdn,
            )
            key = (item.incident_id, item.contact_id)
            if key not in best or item.rung < best[key].rung:
                best[key] = item
    return sorted(best.values(), key=lambda i: (i.contact_id, i.incident_id))


def due_incident_ids(session: Session) -> list[int]:
    """Open incidents that owe at least one notice."""
    inner = _due_query().subquery()
    return list(session.scalars(select(inner.c.incident_id).distinct()))


def usable_rungs(session: Session, incident_id: int) -> list[int]:
    """The ladder levels of an incident that have at least one contact we can write to."""
    return sorted(
        set(
            session.scalars(
                select(Recipient.level)
                .join(Contact, Contact.id == Recipient.contact_id)
                .where(
                    and_(
                        Recipient.incident_id == incident_id,
                        Contact.bounced == false(),
                        Contact.suppressed == false(),
                    )
                )
            )
        )
    )

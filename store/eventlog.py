"""Appending to the event log: the one way stages record a state change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.models import Event


def record(
    session: Session,
    at: datetime,
    kind: str,
    *,
    incident_id: int | None = None,
    subject: tuple[str, int] | None = None,
    actor: str = "tocsin",
    **data: Any,
) -> Event:
    """Add an event in the caller's transaction, so it commits with the change it describes."""
    event = Event(
        at=at,
        kind=kind,
        incident_id=incident_id,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        actor=actor,
        data=data,
    )
    session.add(event)
    return event

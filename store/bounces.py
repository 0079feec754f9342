"""Per-contact bounces as ``tocsin export``, the status JSON and the board show them.

``contacts.bounce_status`` is ``hard`` (never written to again), ``soft`` (a 4xx or a
delayed DSN; still written to) or null; ``bounced_at`` and ``bounce_reason`` say when
and why (see notifier/bounces.py, which records them).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Contact

BOUNCES_LISTED = 200  # the status JSON lists the latest bounced contacts, not all
CELL_KEYS = ("email", "role", "bounce_status", "bounced_at", "bounce_reason")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def bounce_fields(contact: Any) -> dict[str, Any]:
    """The bounce fields of an export record's contact (any row with Contact's columns)."""
    return {
        "bounced": bool(contact.bounced),
        "bounce_status": contact.bounce_status,
        "bounced_at": _iso(contact.bounced_at),
        "bounce_reason": contact.bounce_reason,
    }


def bounces_cell(contacts: list[dict[str, Any]]) -> str:
    """The CSV's last column: a JSON list of the contacts with a bounce, else empty."""
    bounced = [{k: c.get(k) for k in CELL_KEYS} for c in contacts if c.get("bounce_status")]
    return json.dumps(bounced, ensure_ascii=False) if bounced else ""


def bounce_summary(session: Session) -> dict[str, Any]:
    """Contacts with a bounce: counts by kind and the latest, newest first."""
    counts = dict(
        session.execute(
            select(Contact.bounce_status, func.count())
            .where(Contact.bounce_status.is_not(None))
            .group_by(Contact.bounce_status)
        ).all()
    )
    rows = session.execute(
        select(
            Contact.email,
            Contact.role,
            Contact.bounces,
            Contact.bounced,
            Contact.bounce_status,
            Contact.bounced_at,
            Contact.bounce_reason,
        )
        .where(Contact.bounce_status.is_not(None))
        .order_by(Contact.bounced_at.desc(), Contact.id.desc())
        .limit(BOUNCES_LISTED)
    ).all()
    return {
        "hard": counts.get("hard", 0),
        "soft": counts.get("soft", 0),
        "contacts": [
            {"email": r.email, "role": r.role, "bounces": r.bounces or 0, **bounce_fields(r)}
            for r in rows
        ],
    }

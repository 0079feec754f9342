"""What a contact's last bounce was: hard or soft, when, and the relay's or DSN's reason.

A hard bounce (a 5xx at RCPT or DATA, a DSN whose recipient ``failed`` with
5.x.x) marks the contact ``bounced``: never written to again, and its role
moves up the ladder. A soft one (a 4xx for that recipient, a ``delayed`` DSN)
is only noted: the notice is retried and nothing escalates. Either way the
export, the status JSON and the board show it per contact, because an
aggregate "failed" count cannot tell an operator which address to fix.
"""

from __future__ import annotations

from datetime import datetime

from notifier.safety import one_line
from store.models import Contact

REASON_MAX = 500


def record_hard(contact: Contact, now: datetime, reason: str) -> None:
    """A permanent failure: the contact is bounced from now on."""
    if contact.bounce_status != "hard" or contact.bounced_at is None:
        contact.bounced_at = now
    contact.bounced = True
    contact.bounce_status = "hard"
    contact.bounce_reason = one_line(reason, REASON_MAX)


def record_soft(contact: Contact, now: datetime, reason: str) -> None:
    """A temporary failure for this address: noted, unless it has bounced hard already."""
    if contact.bounce_status == "hard":
        return
    contact.bounce_status = "soft"
    contact.bounced_at = now
    contact.bounce_reason = one_line(reason, REASON_MAX)


def is_recipient_deferral(code: int | None, stop: bool) -> bool:
    """A 4xx about this recipient, not a relay that is down or refused our login."""
    return code is not None and 400 <= code < 500 and not stop

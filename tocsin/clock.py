"""The clock every time-driven decision reads.

``--now`` sets it for a whole run, so an operator can back-fill and tests can
move time forward without sleeping. Nothing in tocsin calls
``datetime.now()`` directly; it asks a :class:`Clock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive one is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """The real time, aware and in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    """A clock that is either the real time or fixed at ``frozen``."""

    frozen: datetime | None = None

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else utcnow()

    @classmethod
    def at(cls, text: str | None) -> Clock:
        return cls(parse_instant(text) if text else None)

"""The outbox: notices (one message to one recipient) and the items they carry.

The unique key on (incident, contact, level, episode) in ``notice_items`` is
what makes a second notice for the same thing impossible, whatever runs at
once. A notice moves ``queued -> sending -> sent``; ``unknown`` is a notice
whose fate at the relay cannot be told after a crash (reported, never silently
re-sent); ``bounced`` got a permanent failure; ``failed`` ran out of retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JSONType, UTCDateTime

NOTICE_STATES = ("queued", "sending", "sent", "failed", "bounced", "unknown")


class Notice(Base):
    """A rendered message to one recipient, and where it is on its way out."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_state", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The notice's own ticket id (subject, Reply-To); each incident keeps its own too.
    ticket: Mapped[str | None] = mapped_column(String(32), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # first | followup | digest
    level: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(16))
    part: Mapped[int] = mapped_column(Integer, default=1)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    subject: Mapped[str] = mapped_column(Text)
    message: Mapped[bytes] = mapped_column(LargeBinary)  # the whole RFC 5322 message
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Which process holds a "sending" row ("host:pid"): a live owner is never reconciled.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NoticeItem(Base):
    """One incident in one notice, for one recipient at one level: at most once, ever.

    ``episode`` is the incident's re-compromise count: a site that was cleaned
    and then compromised again is a new story and gets notified afresh.
    """

    __tablename__ = "notice_items"
    __table_args__ = (UniqueConstraint("incident_id", "contact_id", "level", "episode"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    level: Mapped[int] = mapped_column(Integer)
    episode: Mapped[int] = mapped_column(Integer, default=0)


class PortalToken(Base):
    """A per-recipient portal link's token; only its hash is kept."""

    __tablename__ = "portal_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(Text)


class InboxMessage(Base):
    """A message ``tocsin inbox`` has read, so reading the same mailbox twice counts once.

    ``key`` is the sha256 of the message's Message-ID (or of its bytes when it
    has none); ``kind`` is dsn, reply, auto (out-of-office, ignored) or unmatched.
    """

    __tablename__ = "inbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    kind: Mapped[str] = mapped_column(String(16))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), index=True)
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class RelayJournal(Base):
    """What the SMTP relay was handed, per Message-ID: ``begin`` (committed before
    DATA), ``accepted`` (after the relay's 250) or ``rejected``.

    It lives in the store, not in a file beside the working directory, so a rerun
    from another folder (cron) or another host reads the same journal and never
    re-sends a message the relay took (issue 12).
    """

    __tablename__ = "relay_journal"

    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

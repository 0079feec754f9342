"""Campaigns, incidents (one per compromised site per campaign) and their ladders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JSONType, UTCDateTime

INCIDENT_STATES = ("open", "resolved", "reopened")


class Campaign(Base):
    """A cluster of incidents: one family sharing one IOC, or a name given at ingest."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    family: Mapped[str | None] = mapped_column(String(64))
    cluster_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    iocs: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    tlp: Mapped[str | None] = mapped_column(String(16))  # None: board.default_tlp


class Incident(Base):
    """A compromised site within a campaign, and where it stands.

    ``state`` is open, resolved or reopened (a re-compromise); ``level`` is
    0 before the first notice, then 1, 2, 3 along the contact ladder.
    ``public_id`` is the ticket id quoted in subjects and replies.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("site_id", "campaign_id"),
        Index("ix_incidents_due", "state", "next_recheck_at"),
        # A campaign's incidents, newest first (the board's campaign page).
        Index("ix_incidents_campaign_seen", "campaign_id", "first_seen", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    family: Mapped[str | None] = mapped_column(String(64))
    # Every family the site's checks found during this incident, first one first
    # (``family`` stays the first): a site has one open incident, whatever it serves.
    families: Mapped[list[str] | None] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(16), default="open")
    level: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_confirmed: Mapped[datetime] = mapped_column(UTCDateTime())
    last_check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id"))
    first_notified: Mapped[datetime | None] = mapped_column(UTCDateTime())
    level_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Contacts already told owe a follow-up up to this level; None: ``level``. A bounce
    # moves ``level`` on for the bounced role only, so this stays where the others were.
    followup_level: Mapped[int | None] = mapped_column(Integer)
    next_recheck_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recheck_index: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    recheck_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tlp: Mapped[str | None] = mapped_column(String(16))  # None: the campaign's label
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class IncidentUrl(Base):
    """The URLs on a site that belong to an incident."""

    __tablename__ = "incident_urls"
    __table_args__ = (UniqueConstraint("incident_id", "url_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("urls.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Recipient(Base):
    """One rung of an incident's contact ladder: whom to tell at which level, and why."""

    __tablename__ = "recipients"
    __table_args__ = (UniqueConstraint("incident_id", "contact_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16), default="en")
    note: Mapped[str | None] = mapped_column(Text)  # e.g. "this address fronts a CDN"
    # Set when the contact is a CDN's abuse desk (its name): the notice must say so,
    # because a CDN can pass the notice on but cannot clean the origin itself.
    cdn: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float] = mapped_column(Float, default=1.0, server_default=text("1.0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

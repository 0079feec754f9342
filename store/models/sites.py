"""Who is behind a URL: the site, its network, and the people to tell."""

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

CONTACT_ROLES = ("owner", "hosting", "registrar", "cert")


class Site(Base):
    """A host that served something malicious, with what enrichment learnt of it."""

    __tablename__ = "sites"
    __table_args__ = (
        Index("ix_sites_enrich_due", "enrich_state", "next_enrich_at"),
        # The board's search by IP: a GIN index on PostgreSQL (`ips @> '["1.2.3.4"]'`).
        Index("ix_sites_ips", "ips", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    registered_domain: Mapped[str | None] = mapped_column(String(255), index=True)
    ips: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cname_chain: Mapped[list[str]] = mapped_column(JSONType, default=list)
    asn: Mapped[int | None] = mapped_column(Integer, index=True)
    prefix: Mapped[str | None] = mapped_column(String(64))
    as_name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    network_name: Mapped[str | None] = mapped_column(String(255))
    registrar: Mapped[str | None] = mapped_column(String(255))
    registrar_iana_id: Mapped[str | None] = mapped_column(String(32))
    cdn: Mapped[str | None] = mapped_column(String(100))
    shared_hosting: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    enrich_state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|partial|done
    enriched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_enrich_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enrich_error: Mapped[str | None] = mapped_column(Text)
    # What the last run could not learn (e.g. "rdap:ip", "rdap:domain", "security.txt"):
    # the gaps a later run fills.
    enrich_gaps: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    enrich_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Contact(Base):
    """An address to notify, in one role, with its track record.

    The same mailbox can be a hosting desk and a registrar desk; the role is
    part of its identity because the notice differs.
    """

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("email", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))  # owner | hosting | registrar | cert
    source: Mapped[str] = mapped_column(String(100))  # rdap:ip, rdap:domain, security.txt, ...
    name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))  # its own stated preference
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    bounced: Mapped[bool] = mapped_column(Boolean, default=False)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last bounce: "hard" (5xx, failed DSN: ``bounced``) or "soft" (4xx, delayed DSN),
    # and the relay's reply or the DSN's status and diagnostic (one line, bounded).
    bounce_status: Mapped[str | None] = mapped_column(String(8))
    bounce_reason: Mapped[str | None] = mapped_column(Text)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    suppress_reason: Mapped[str | None] = mapped_column(Text)
    optout_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    notices_sent: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    fixes: Mapped[int] = mapped_column(Integer, default=0)
    fix_seconds_total: Mapped[float] = mapped_column(Float, default=0.0)


class SiteContact(Base):
    """That a contact is responsible for a site, how we know, and how sure we are."""

    __tablename__ = "site_contacts"
    __table_args__ = (UniqueConstraint("site_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    note: Mapped[str | None] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RdapCache(Base):
    """A cached RDAP answer per network or registrar, negative answers included."""

    __tablename__ = "rdap_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)  # e.g. ip:203.0.113.0/24
    kind: Mapped[str] = mapped_column(String(16))  # ip | domain | asn | entity
    server: Mapped[str | None] = mapped_column(String(255))
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

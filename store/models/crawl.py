"""What was looked at: URLs, every visit to them, and the evidence kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JSONType, UTCDateTime

VERDICTS = ("pending", "malicious", "suspicious", "clean", "offline", "error")


class Url(Base):
    """A normalised URL, unique by the sha256 of its normalised form.

    The hash carries the uniqueness because PostgreSQL cannot index a text
    column past about 2.7 kB, and feed URLs run up to 8 KiB.
    """

    __tablename__ = "urls"
    __table_args__ = (
        Index("ix_urls_due", "verdict", "next_check_at"),
        Index("ix_urls_verdict_id", "verdict", "id"),  # the API's URL list, by verdict
        Index("ix_urls_campaign_hint", "campaign_hint"),  # ... and by campaign
        Index("ix_urls_lease_token", "lease_token"),  # a crawl's leases (store/leases.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16), default="pending")
    family: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    rules: Mapped[list[str] | None] = mapped_column(JSONType)
    campaign_hint: Mapped[str | None] = mapped_column(String(200))  # ingest --campaign
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())  # last time a feed named it
    last_checked: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    verdict_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The crawl checking it now (store/leases.py): its token, the queued job it works
    # for, and when the lease lapses if nobody extends it.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_job: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Check(Base):
    """One visit to a URL: how it was routed, the verdict, and what proves it."""

    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_url_id", "url_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("urls.id"))
    kind: Mapped[str] = mapped_column(String(16))  # triage | confirm | recheck
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    route: Mapped[str | None] = mapped_column(String(16))  # offline | payload | browser | blocked
    route_reason: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(16))
    family: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    rules: Mapped[list[str]] = mapped_column(JSONType, default=list)
    iocs: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    evidence_lines: Mapped[list[str]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    final_url: Mapped[str | None] = mapped_column(Text)
    redirect_chain: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    content_type: Mapped[str | None] = mapped_column(String(200))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Evidence(Base):
    """A reference from a check to a content-addressed blob under ``evidence.dir``."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("check_id", "kind", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # screenshot | har | dom | payload_zip | ...
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    # For a payload zip: the sha256 of the payload inside (an AES zip differs on every
    # write, so this is how an already zipped payload is found and reused).
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

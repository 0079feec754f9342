"""What came in: ingest runs, every accepted feed line, every rejected one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JSONType, UTCDateTime


class IngestRun(Base):
    """One ``tocsin ingest`` invocation and its totals (new + duplicate + rejected = lines)."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sources: Mapped[list[str]] = mapped_column(JSONType, default=list)
    campaign: Mapped[str | None] = mapped_column(String(200))
    new: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)


class FeedSubmission(Base):
    """An accepted feed record, its raw line kept verbatim, pointing at its URL."""

    __tablename__ = "feed_submissions"
    __table_args__ = (
        Index("ix_feed_submissions_url_id", "url_id"),
        Index("ix_feed_submissions_run_line", "run_id", "line_no"),  # a submission, by line
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id"))
    url_id: Mapped[int] = mapped_column(ForeignKey("urls.id"))
    status: Mapped[str] = mapped_column(String(16))  # new | duplicate
    source: Mapped[str] = mapped_column(String(100))  # feed name: urlhaus, phishtank, ...
    source_ref: Mapped[str] = mapped_column(Text)  # the file or URL it came from
    format: Mapped[str] = mapped_column(String(32))
    line_no: Mapped[int] = mapped_column(Integer)
    reporter: Mapped[str | None] = mapped_column(String(200))
    feed_ref: Mapped[str | None] = mapped_column(String(200))  # the feed's own id
    threat: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str] | None] = mapped_column(JSONType)
    target: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the feed's date
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when tocsin read it
    raw: Mapped[str] = mapped_column(Text)


class Reject(Base):
    """A feed line that was refused, with why. Never silently dropped."""

    __tablename__ = "rejects"
    __table_args__ = (Index("ix_rejects_run_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id"))
    source_ref: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    line_no: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # capped at ingest.max_line bytes
    raw_len: Mapped[int] = mapped_column(Integer)  # the full length before capping
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

"""Scheduled jobs of ``tocsin serve``: who runs each now, and how its last run went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JSONType, UTCDateTime


class JobLease(Base):
    """One row per scheduled job (``crawl``, ``notify``, ``feed:NAME``...).

    The lease (token, holder, expiry) keeps two ``serve`` processes on one store from
    running the same job at once; the rest is what ``/metrics`` and ``/healthz`` show.
    """

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    token: Mapped[str | None] = mapped_column(String(32))
    holder: Mapped[str | None] = mapped_column(String(255))  # host:pid, for the operator
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_duration: Mapped[float | None] = mapped_column(Float)  # seconds
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Every run's duration, for /metrics' histogram: a count, a sum, and a count per
    # bucket of ``store.job_leases.DURATION_BUCKETS`` (not cumulative). Kept here, not in
    # a process, because the runs happen in other processes than the one scraped.
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    duration_sum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    duration_buckets: Mapped[list[int] | None] = mapped_column(JSONType)

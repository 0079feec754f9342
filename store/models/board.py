"""Who may use the board: analysts' log-ins and sessions, API tokens, and submissions.

Secrets are never stored: a password as its argon2 hash, a session or a bearer
token as its sha256. A leaked database opens no door.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import UTCDateTime

USER_ROLES = ("admin", "analyst")
TOKEN_ROLES = ("analyst", "researcher")


class BoardUser(Base):
    """A person who logs in to the analyst pages with a password."""

    __tablename__ = "board_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | analyst
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BoardSession(Base):
    """A logged-in browser: the cookie's sha256, whose user, until when."""

    __tablename__ = "board_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("board_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiToken(Base):
    """A bearer token for the API. ``name`` is the holder: a researcher keeps their
    submissions across a revoked and re-created token of the same name."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))  # analyst | researcher
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in `token list` to tell them apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Submission(Base):
    """A URL list posted to the API: an ingest run, and who sent it."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_submitter", "submitter", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id"), unique=True)
    submitter: Mapped[str] = mapped_column(String(64))  # the token's (or user's) name
    source: Mapped[str] = mapped_column(String(100))
    campaign: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lines: Mapped[int] = mapped_column(Integer, default=0)


class BoardFailure(Base):
    """A failed log-in, a wrong bearer token or a portal miss, by client address: the
    rate limit counts these, in the store so that every board worker sees them."""

    __tablename__ = "board_failures"
    __table_args__ = (Index("ix_board_failures_address", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

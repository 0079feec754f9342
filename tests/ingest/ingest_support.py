"""Ingest test helpers: the feed samples, a config for a store (and the loopback server)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopback import FeedServer, Reply
from sqlalchemy import select

from ingest import IngestReport, ingest_sources
from store.db import Database
from store.models import FeedSubmission, Reject, Url
from tocsin.config import Config

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"  # see tests/data/README.md
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_config(db_url: str, **tables: dict[str, Any]) -> Config:
    """A validated Config for ``db_url`` with extra tables, as a TOML file would give."""
    return Config.model_validate({"database": {"url": db_url}, **tables})


def ingest(
    db: Database, refs: list[str | Path], config: Config | None = None, **options: Any
) -> IngestReport:
    """Run the ingest stage in-process at the fixed clock NOW."""
    config = config or make_config(db.url)
    return ingest_sources(config, db, NOW, [str(r) for r in refs], **options)


def submissions(db: Database) -> list[FeedSubmission]:
    with db.session() as session:
        return list(session.scalars(select(FeedSubmission).order_by(FeedSubmission.id)))


def rejects(db: Database) -> list[Reject]:
    with db.session() as session:
        return list(session.scalars(select(Reject).order_by(Reject.id)))


def urls(db: Database) -> list[Url]:
    with db.session() as session:
        return list(session.scalars(select(Url).order_by(Url.id)))


def assert_accounted(report: IngestReport) -> None:
    """The invariant: every record is new, duplicate or rejected."""
    for source in report.sources:
        assert source.new + source.duplicate + source.rejected == source.records, source


__all__ = ["FeedServer", "Reply"]  # the ingest tests import them from here

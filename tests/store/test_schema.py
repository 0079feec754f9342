"""The store on SQLite and PostgreSQL: migrations match the models, and the
invariants that later stages lean on are enforced by the database itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError

from store import eventlog, migrate
from store.db import Database
from store.models import (
    Base,
    Campaign,
    Contact,
    Event,
    Incident,
    Notice,
    NoticeItem,
    Site,
    Url,
)
from tocsin.errors import StoreError

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": migrate.alembic_owns})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_init_is_safe_to_repeat(db: Database) -> None:
    head = migrate.head_revision(db)
    assert migrate.upgrade(db) == (head, head)
    migrate.ensure_ready(db)  # at head: nothing to say


def test_postgresql_settings_keep_the_urls_own_options(pg_url: str) -> None:
    """What the notifier's PostgreSQL figures rest on (benchmarks.md): plans for the
    tables' current sizes and lz4 for stored messages; and options given in the
    database URL (here the tests' private search_path) still apply."""
    db = Database(pg_url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW search_path").scalar().startswith("tocsin_test_")
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
            method = conn.exec_driver_sql(
                "SELECT attcompression FROM pg_attribute"
                " WHERE attrelid = 'notices'::regclass AND attname = 'message'"
            ).scalar()
        assert method == "l"  # lz4 (Debian's PostgreSQL is built with it)
    finally:
        db.dispose()


def test_ensure_ready_leaves_creating_to_init(tmp_path) -> None:
    """An empty database is not given a schema behind the operator's back; ``init`` does."""
    fresh = Database(f"sqlite:///{tmp_path / 'sub' / 'new.db'}")
    with pytest.raises(StoreError, match=r"no tocsin store in .*: run `tocsin init` first"):
        migrate.ensure_ready(fresh)
    assert migrate.current_revision(fresh) is None
    migrate.upgrade(fresh)
    migrate.ensure_ready(fresh)
    with fresh.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_ensure_ready_refuses_a_foreign_database(tmp_path) -> None:
    foreign = Database(f"sqlite:///{tmp_path / 'other.db'}")
    with foreign.engine.begin() as conn:
        conn.execute(text("create table someone_elses (id integer)"))
    with pytest.raises(StoreError, match="refusing"):
        migrate.ensure_ready(foreign)


def test_times_round_trip_as_aware_utc(db: Database) -> None:
    with db.session() as s:
        s.add(
            Url(
                url="http://a.example/",
                url_hash="a" * 64,
                host="a.example",
                first_seen=T0,
                last_seen=T0 + timedelta(hours=1),
            )
        )
    with db.session() as s:
        url = s.scalars(select(Url)).one()
        assert url.first_seen == T0 and url.first_seen.tzinfo is not None
        later = s.scalars(select(Url).where(Url.last_seen > T0)).all()
        assert len(later) == 1
    with pytest.raises(StatementError, match="naive"), db.session() as s:
        s.scalars(select(Url)).one().last_checked = datetime(2026, 1, 1)
        s.flush()


def test_url_hash_is_unique(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as s:
        for _ in range(2):
            s.add(
                Url(
                    url="http://a.example/",
                    url_hash="b" * 64,
                    host="a.example",
                    first_seen=T0,
                    last_seen=T0,
                )
            )
            s.flush()


def _incident(s) -> tuple[Incident, Contact]:
    site = Site(host="a.example", first_seen=T0)
    campaign = Campaign(name="c1", first_seen=T0, last_seen=T0)
    contact = Contact(email="abuse@host.example", role="hosting", source="rdap:ip", first_seen=T0)
    s.add_all([site, campaign, contact])
    s.flush()
    incident = Incident(
        public_id="TCS-1",
        site_id=site.id,
        campaign_id=campaign.id,
        first_seen=T0,
        last_confirmed=T0,
    )
    s.add(incident)
    s.flush()
    return incident, contact


def _notice(contact: Contact, message_id: str) -> Notice:
    return Notice(
        message_id=message_id,
        contact_id=contact.id,
        recipient=contact.email,
        role="hosting",
        kind="first",
        level=1,
        language="en",
        subject="s",
        message=b"m",
        created_at=T0,
    )


def test_a_notice_item_exists_once_per_incident_recipient_level(db: Database) -> None:
    with db.session() as s:
        incident, contact = _incident(s)
        first = _notice(contact, "<1@t>")
        s.add(first)
        s.flush()
        s.add(
            NoticeItem(notice_id=first.id, incident_id=incident.id, contact_id=contact.id, level=1)
        )
    with pytest.raises(IntegrityError), db.session() as s:
        second = _notice(contact, "<2@t>")
        s.add(second)
        s.flush()
        s.add(
            NoticeItem(notice_id=second.id, incident_id=incident.id, contact_id=contact.id, level=1)
        )
        s.flush()


def test_event_log_is_append_only(db: Database) -> None:
    with db.session() as s:
        incident, _ = _incident(s)
        eventlog.record(s, T0, "incident.opened", incident_id=incident.id, family="skimmer")
    with db.session() as s:
        event = s.scalars(select(Event)).one()
        assert event.data == {"family": "skimmer"} and event.at == T0
    with pytest.raises(SQLAlchemyError, match="append-only"), db.session() as s:
        s.execute(text("update events set kind = 'forged'"))
    with pytest.raises(SQLAlchemyError, match="append-only"), db.session() as s:
        s.execute(text("delete from events"))
    with db.session() as s:
        assert s.scalars(select(Event.kind)).all() == ["incident.opened"]

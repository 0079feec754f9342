"""Migration 0004 (incident families) from 0003 with data, on SQLite and PostgreSQL.

A store written before 0004 keeps its incidents; each gets its one family as its
family list. Such a store may hold the very thing 0004's code prevents: one site
with two open incidents (a payload that changed between visits). The next
malicious check joins the oldest of them instead of opening a third.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from crawler.items import CheckItem
from pipelines.store import StoreWriter
from store import migrate
from store.db import Database
from store.models import Campaign, Incident, IncidentUrl, Site, Url
from store.types import JSONType, UTCDateTime
from tocsin.config import Config
from tocsin.urls import url_hash

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
PG_BASE = os.environ.get("TOCSIN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OLD = sa.table(  # the incidents table as 0003 left it
    "incidents",
    *(
        sa.column(name)
        for name in (
            "id",
            "public_id",
            "site_id",
            "campaign_id",
            "family",
            "state",
            "level",
            "recheck_index",
            "reopen_count",
        )
    ),
    sa.column("first_seen", UTCDateTime()),
    sa.column("last_confirmed", UTCDateTime()),
    sa.column("meta", JSONType),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database with no schema: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    schema = f"tocsin_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_BASE, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {str(exc).splitlines()[0]}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _upgrade_to(db: Database, revision: str) -> None:
    cfg = migrate._alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_upgrade_from_0003_keeps_incidents_and_joins_the_oldest(bare_url: str) -> None:
    db = Database(bare_url)
    _upgrade_to(db, "0003")
    host = "www.bakery.example"
    with db.session() as session:
        site = Site(
            host=host,
            registered_domain="bakery.example",
            ips=[],
            cname_chain=[],
            shared_hosting=False,
            first_seen=T0,
            enrich_state="done",
            meta={},
        )
        campaigns = [
            Campaign(name=f"{f} x", family=f, manual=False, first_seen=T0, last_seen=T0, iocs={})
            for f in ("fake-update", "hidden-iframe", None)
        ]
        session.add_all([site, *campaigns])
        session.flush()
        # Only the columns revision 0003 has: the current model has more (leases, 0007).
        url_id = session.scalar(
            sa.insert(Url)
            .values(
                url=f"http://{host}/",
                url_hash=url_hash(f"http://{host}/"),
                host=host,
                first_seen=T0,
                last_seen=T0,
                verdict="malicious",
            )
            .returning(Url.id)
        )
        ids = {"site": site.id, "url": url_id, "campaigns": [c.id for c in campaigns]}
    with db.engine.begin() as conn:
        conn.execute(
            OLD.insert(),
            [
                {
                    "public_id": f"TCS-OLD{n}-AAAA",
                    "site_id": ids["site"],
                    "campaign_id": ids["campaigns"][n],
                    "family": family,
                    "state": "open",
                    "level": 1,
                    "first_seen": T0,
                    "last_confirmed": T0,
                    "recheck_index": 0,
                    "reopen_count": 0,
                    "meta": {},
                }
                for n, family in enumerate(("fake-update", "hidden-iframe", None))
            ],
        )
    db.dispose()

    db = Database(bare_url)
    before, after = migrate.upgrade(db)
    assert (before, after) == ("0003", migrate.head_revision(db))
    with db.session() as session:
        old = session.scalars(select_incidents()).all()
        assert [(i.public_id, i.family, i.families) for i in old] == [
            ("TCS-OLD0-AAAA", "fake-update", ["fake-update"]),
            ("TCS-OLD1-AAAA", "hidden-iframe", ["hidden-iframe"]),
            ("TCS-OLD2-AAAA", None, []),
        ]

    # A new check of the site, in a third family: it joins the oldest open incident.
    config = Config.model_validate({"database": {"url": bare_url}})
    item = CheckItem(ids["url"], f"http://{host}/", "recheck", T0, route="browser")
    item.verdict, item.family, item.confidence = "malicious", "cryptominer", 0.9
    item.rules, item.meta = ["tocsin.cryptominer"], {"cluster": ["host:miner.example"]}
    (outcome,) = StoreWriter(db, config).store_batch([item], T0)
    with db.session() as session:
        incidents = session.scalars(select_incidents()).all()
        assert len(incidents) == 3
        assert outcome.incident_id == incidents[0].id
        assert incidents[0].families == ["fake-update", "cryptominer"]
        assert session.scalars(sa.select(IncidentUrl.incident_id)).all() == [incidents[0].id]
    db.dispose()


def select_incidents() -> sa.Select:
    return sa.select(Incident).order_by(Incident.id)

"""Enrichment on SQLite while another process writes (the crawl's store pipeline does, in
the same process and from others): it waits for the write lock instead of failing with
"database is locked"."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
from enrich_support import make_site
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from store.models import Site

HOLD = 0.1  # seconds the other writer keeps its lock each time


class OtherWriter:
    """Another connection to the same SQLite file that takes the write lock, changes a row
    and commits after ``HOLD`` seconds: started just as each enrichment transaction begins,
    so the enrichment's writes always meet a lock held, then a newer database."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.holds = 0
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def _hold(self, locked: threading.Event) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE campaigns SET last_seen = last_seen")
                self.holds += 1
                locked.set()
                time.sleep(HOLD)
                conn.execute("COMMIT")
            finally:
                conn.close()
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
            locked.set()

    def before_begin(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            return
        locked = threading.Event()
        thread = threading.Thread(target=self._hold, args=(locked,), daemon=True)
        self.threads.append(thread)
        thread.start()
        assert locked.wait(30), "the other writer never got the lock"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_enrichment_waits_for_another_writers_lock(enrich_env) -> None:
    db = enrich_env.db
    with db.session() as session:
        site_id = make_site(session, "www.themarquetry.com").id
    other = OtherWriter(str(make_url(db.url).database))
    event.listen(db.engine, "before_cursor_execute", other.before_begin)
    try:
        summary = enrich_env.run([site_id])
    finally:
        event.remove(db.engine, "before_cursor_execute", other.before_begin)
        for thread in other.threads:
            thread.join(30)
    assert other.errors == [], other.errors
    assert other.holds >= 3  # every transaction of the run met the other writer
    assert (summary.sites, summary.done) == (1, 1)
    with db.session() as session:
        site = session.scalars(select(Site).where(Site.id == site_id)).one()
        assert site.enrich_state == "done" and site.asn == 15169

"""Leases per URL (store.leases): claims, lapses, retried jobs, stale writers.

Store paths run on SQLite and PostgreSQL (the ``db_url`` fixture); the race of
two claimers runs on PostgreSQL, where claims are concurrent transactions.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from crawl_support import T0, add_urls
from sqlalchemy import func, select, update

from crawler.items import CheckItem, Dropped
from pipelines.store import StoreWriter
from store import leases
from store.db import Database
from store.models import Check, Url
from tocsin.config import Config

TERM = timedelta(seconds=600)
LATER = T0 + timedelta(hours=1)  # the wall clock the tests pretend


def _urls(db: Database, n: int, prefix: str = "site") -> list[int]:
    urls = [f"http://{prefix}-{i}.example.com/" for i in range(n)]
    return sorted(add_urls(db, urls).values())


def _claim(db: Database, token: str, limit: int = 100, **kwargs) -> list[int]:
    kwargs.setdefault("now", LATER)
    rows = leases.claim(db, token, due_at=T0, limit=limit, lease=TERM, **kwargs)
    return [url_id for url_id, _ in rows]


def test_a_claim_takes_due_free_urls_and_leases_them(db) -> None:
    ids = _urls(db, 6)
    with db.session() as session:  # one checked already (not due), one due again later
        session.execute(update(Url).where(Url.id == ids[0]).values(verdict="clean"))
        session.execute(
            update(Url)
            .where(Url.id == ids[1])
            .values(verdict="error", next_check_at=T0 + timedelta(hours=6))
        )
    assert _claim(db, "a" * 32, limit=2) == ids[2:4]
    assert _claim(db, "b" * 32) == ids[4:]  # the next claimer skips what "a" holds
    assert _claim(db, "c" * 32) == []
    with db.session() as session:
        url = session.get(Url, ids[2])
        assert (url.lease_token, url.lease_job, url.lease_expires_at) == (
            "a" * 32,
            None,
            LATER + TERM,
        )
    assert leases.held(db) == 4
    # Extending moves every lease of the token; releasing frees them for anyone.
    assert leases.extend(db, "a" * 32, TERM, now=LATER + TERM) == 2
    assert leases.release(db, "a" * 32) == 2
    assert _claim(db, "c" * 32) == ids[2:4]
    assert leases.unclaimed_due(db, T0, now=LATER) == 0


def test_a_lapsed_lease_is_taken_over_and_a_job_takes_back_its_own(db) -> None:
    ids = _urls(db, 4)
    assert _claim(db, "dead" * 8, job="17", limit=2) == ids[:2]
    assert _claim(db, "other" + "x" * 27, job="18", limit=2) == ids[2:]
    # Before the term ends, another crawl gets nothing; the retry of job 17 gets its own.
    assert _claim(db, "c" * 32) == []
    assert _claim(db, "retry" + "x" * 27, job="17") == ids[:2]
    # After the term, anyone takes what nobody extended.
    assert _claim(db, "late" * 8, now=LATER + TERM + timedelta(seconds=1)) == ids
    # A lease is only extended by its holder: the old holders hold nothing now.
    assert leases.extend(db, "dead" * 8, TERM) == 0
    assert leases.extend(db, "late" * 8, TERM) == 4


def _clean(url_id: int, url: str, lease: str | None) -> CheckItem:
    item = CheckItem(url_id, url, "triage", T0, route="browser", http_status=200)
    item.verdict, item.lease = "clean", lease
    return item


def test_a_stale_writer_check_is_dropped_and_the_holder_stores_once(db_url) -> None:
    config = Config.model_validate({"database": {"url": db_url}})
    db = Database(db_url)
    ids = _urls(db, 3)
    with db.session() as session:
        urls = {r[0]: r[1] for r in session.execute(select(Url.id, Url.url))}
    stale, holder = "s" * 32, "h" * 32
    assert _claim(db, stale, job="5") == ids
    assert _claim(db, holder, job="5") == ids  # the job was retried: its leases move
    writer = StoreWriter(db, config)
    # The stale crawl (its worker was presumed dead) comes back with two checks.
    first, second = writer.store_batch([_clean(i, urls[i], stale) for i in ids[:2]], T0)
    assert first == Dropped(ids[0], urls[ids[0]], "lease lost: another crawl holds it now")
    assert isinstance(second, Dropped)
    # The holder stores all three, releasing each lease in the same transaction.
    stored = writer.store_batch([_clean(i, urls[i], holder) for i in ids], T0)
    assert [o.verdict for o in stored] == ["clean"] * 3
    # A stale check after the holder stored: nobody holds the URL, still dropped.
    (late,) = writer.store_batch([_clean(ids[2], urls[ids[2]], stale)], T0)
    assert late == Dropped(ids[2], urls[ids[2]], "lease lost: nobody holds it now")
    # One by one (the batch's fallback path) drops it too.
    assert isinstance(writer.store(_clean(ids[2], urls[ids[2]], stale), T0), Dropped)
    with db.session() as session:
        rows = session.execute(select(Check.url_id, func.count()).group_by(Check.url_id))
        counts = {r[0]: r[1] for r in rows}
        assert counts == {i: 1 for i in ids}
    assert leases.held(db) == 0
    # A check that claims nothing (a re-check of given URLs) is stored as before.
    (recheck,) = writer.store_batch([_clean(ids[0], urls[ids[0]], None)], T0)
    assert recheck.verdict == "clean"
    db.dispose()


def test_two_concurrent_claimers_never_get_the_same_url(pg_url) -> None:
    """PostgreSQL: claims in parallel transactions (SKIP LOCKED, and a row changed by the
    other claimer since the statement began is re-checked), many small rounds."""
    setup = Database(pg_url)
    ids = _urls(setup, 400, prefix=f"race-{uuid.uuid4().hex[:8]}")
    setup.dispose()
    got: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        db = Database(pg_url)
        start.wait()
        while batch := _claim(db, name * 32, limit=3, among=ids):
            got[name].extend(batch)
        db.dispose()

    threads = [threading.Thread(target=claimer, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == ids
    assert got["a"] and got["b"]  # both took part


def test_a_running_crawl_extends_its_leases(db) -> None:
    """The spider's keeper pushes its leases back every third of the term."""
    import asyncio
    from types import SimpleNamespace

    from crawler.spiders.check import CheckSpider
    from tocsin.app import App

    config = Config.model_validate({"database": {"url": db.url}, "crawl": {"lease_seconds": 10}})
    ids = _urls(db, 2)
    before = leases.wall_now()
    leases.claim(db, "k" * 32, due_at=T0, limit=10, lease=timedelta(seconds=10), now=before)
    spider = SimpleNamespace(config=config, app=App(preset=config), lease_token="k" * 32)

    async def keep_for_a_while() -> None:
        keeper = asyncio.ensure_future(CheckSpider._keep_leases(spider))  # type: ignore[arg-type]
        await asyncio.sleep(4)  # one extension, at 10/3 s
        keeper.cancel()

    asyncio.run(keep_for_a_while())
    with db.session() as session:
        expiries = session.scalars(select(Url.lease_expires_at).where(Url.id.in_(ids))).all()
    assert all(e >= before + timedelta(seconds=13) for e in expiries), (before, expiries)

"""The leases of `tocsin serve`'s jobs: one holder at a time, on the job's interval.

Two schedulers on one store (two `serve` processes) share the schedule: a job runs
once per interval, never twice at once; a dead holder's lease lapses.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import update

from store import job_leases
from store.db import Database
from store.leases import wall_now
from store.models import JobLease
from tocsin.scheduler import Job, Scheduler

HOUR = timedelta(hours=1)
TERM = timedelta(minutes=10)


def test_one_holder_at_a_time_and_due_on_the_interval(db: Database) -> None:
    first = job_leases.take(db, "crawl", timedelta(0), "a:1", TERM)
    assert first is not None
    assert job_leases.take(db, "crawl", timedelta(0), "b:2", TERM) is None  # held
    assert job_leases.held(db) == ["crawl"]
    assert job_leases.extend(db, first, TERM)
    job_leases.finish(db, first, None)
    assert job_leases.held(db) == []
    assert job_leases.take(db, "crawl", HOUR, "b:2", TERM) is None  # ran just now
    again = job_leases.take(db, "crawl", timedelta(0), "b:2", TERM)
    assert again is not None
    job_leases.finish(db, again, "exit code 2")
    (row,) = job_leases.jobs(db)
    assert (row.last_status, row.last_error, row.token) == ("failed", "exit code 2", None)
    assert row.last_success_at is not None and row.last_duration is not None  # the first run's


def test_a_lapsed_lease_is_taken_over(db: Database) -> None:
    dead = job_leases.take(db, "notify", timedelta(0), "dead:1", TERM)
    assert dead is not None
    with db.session() as session:  # the holder died ten minutes ago
        session.execute(
            update(JobLease).values(
                expires_at=wall_now() - timedelta(seconds=1), last_started_at=wall_now() - TERM
            )
        )
    live = job_leases.take(db, "notify", HOUR / 6, "live:2", TERM)
    assert live is not None
    assert not job_leases.extend(db, dead, TERM)  # the dead holder cannot extend it
    job_leases.finish(db, dead, None)  # nor free it
    assert job_leases.held(db) == ["notify"]
    job_leases.finish(db, live, None)
    assert job_leases.held(db) == []


def test_two_schedulers_never_run_one_job_at_once(db_url: str) -> None:
    running, most, runs = [0], [0], [0]
    lock = threading.Lock()

    def slow() -> int:
        with lock:
            running[0] += 1
            runs[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.5)
        with lock:
            running[0] -= 1
        return 0

    stores = [Database(db_url), Database(db_url)]
    schedulers = [Scheduler(s, [Job("crawl", HOUR, slow)], lease=TERM) for s in stores]
    threads = [threading.Thread(target=s.round) for s in schedulers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (runs[0], most[0]) == (1, 1)
    assert job_leases.held(stores[0]) == []
    for store in stores:
        store.dispose()

"""``tocsin crawl --enqueue`` and two ``tocsin worker`` processes on PostgreSQL,
one of them SIGKILLed (its whole process group: reactor, check worker, browser)
while both are in the middle of a batch.

Afterwards every URL has exactly one check, nothing is due, no lease is left,
and the killed batch was retried once (by the survivor, after the dead worker's
heartbeat went stale), taking back its leases at once rather than after
``crawl.lease_seconds``. The survivor keeps one check worker process from batch
to batch. On SQLite both commands refuse in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import processes
import pytest
from crawl_support import (
    add_urls,
    checks_per_url,
    job_statuses,
    run_cli,
    sample_sites,
    sandbox_config,
    start_cli,
    wait_for,
)
from sqlalchemy import func, select, text

from store import leases
from store.db import Database
from store.models import Check

NOW = "2026-03-02T10:00:00Z"
A_DOING = "FROM procrastinate_jobs WHERE worker_id = :a AND status = 'doing'"  # A's batch


def _workers(db: Database) -> list[int]:
    with db.session() as session:
        return list(session.scalars(text("SELECT id FROM procrastinate_workers ORDER BY id")))


def _check_workers(pid: int) -> set[int]:
    """The spawned check worker processes under ``pid`` (pipelines/worker.py)."""
    import psutil

    found = set()
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                found.add(child.pid)
    return found


@pytest.mark.serial  # a kill mid-batch and a heartbeat going stale: timing
def test_two_workers_one_killed_every_url_checked_once(sandbox, tmp_path, private_pg_url) -> None:
    started = time.monotonic()
    config = sandbox_config(
        sandbox,
        tmp_path,
        private_pg_url,
        crawl={"batch_size": 3},
        worker={"heartbeat": "1s", "stalled_after": "6s"},
    )
    first = run_cli(tmp_path, config, "init")
    assert first.returncode == 0 and "installed the job queue's tables" in first.stdout
    second = run_cli(tmp_path, config, "init")  # safe to repeat
    assert second.returncode == 0 and "job queue" not in second.stdout, second.stderr
    db = Database(private_pg_url)
    sites = sample_sites(offline=4, payload=12, clean=3, compromised=5)
    ids = set(add_urls(db, [sandbox.url(site) for site in sites]).values())
    queued = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")
    assert queued.returncode == 0, queued.stderr
    assert f"queued {len(ids)} due URLs in {-(-len(ids) // 3)} batches" in queued.stdout
    again = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")  # nothing twice
    assert "queued 0 due URLs in 0 batches" in again.stdout, again.stdout + again.stderr
    jobs = set(job_statuses(db))

    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    a = start_cli(tmp_path, config, "--now", NOW, "worker", log=logs[0])
    b = None
    try:
        # A registers first, so its worker id is the first one; then B starts.
        wait_for("worker A to register", lambda: _workers(db), 60)
        (a_id,) = _workers(db)
        b = start_cli(tmp_path, config, "--now", NOW, "worker", log=logs[1])

        def a_busy() -> bool:
            with db.session() as session:
                return session.scalar(text(f"SELECT count(*) {A_DOING}"), {"a": a_id}) > 0

        def a_frozen_in_a_batch_a_quarter_done() -> bool:
            with db.session() as session:
                stored = session.scalar(select(func.count()).select_from(Check))
            if stored < len(ids) // 4 or not a_busy():
                return False
            # A batch is short: freeze A, let what it sent land, and look again.
            os.killpg(a.pid, signal.SIGSTOP)
            time.sleep(0.5)
            if a_busy():
                return True
            os.killpg(a.pid, signal.SIGCONT)
            return False

        wait_for("A in a batch, a quarter done", a_frozen_in_a_batch_a_quarter_done, 120)
        killed_at = time.monotonic() - started
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        # A's batch in hand; it stays so until the survivor finds A silent.
        with db.session() as session:
            in_hand = set(session.scalars(text(f"SELECT id {A_DOING}"), {"a": a_id}))
        assert in_hand, "A was between batches when killed"

        check_workers: set[int] = set()  # B's check worker processes seen while it works

        def all_done() -> bool:
            check_workers.update(_check_workers(b.pid))
            statuses = job_statuses(db).values()
            return all(s == "succeeded" for s in statuses) and leases.held(db) == 0

        wait_for("the survivor to finish every batch", all_done, 150)
    finally:
        processes.stop(proc for proc in (a, b) if proc is not None)
    # B kept its one check worker from batch to batch (and its reactor: one process).
    assert len(check_workers) == 1, check_workers
    output = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
    assert b is not None and b.returncode == 0, output

    assert checks_per_url(db) == dict.fromkeys(ids, 1), output
    assert leases.unclaimed_due(db, leases.wall_now()) == 0 and leases.held(db) == 0
    assert set(job_statuses(db)) == jobs  # nothing queued besides the batches
    with db.session() as session:
        retried = dict(
            session.execute(
                text(
                    "SELECT job_id, count(*) FROM procrastinate_events "
                    "WHERE type = 'deferred_for_retry' GROUP BY job_id"
                )
            ).all()
        )
    # The killed worker's batch was retried, once; no other batch was.
    assert retried == dict.fromkeys(in_hand, 1), (retried, in_hand)
    took = time.monotonic() - started
    print(f"{len(ids)} URLs, two workers, one killed at {killed_at:.1f}s: {took:.1f}s")
    db.dispose()


def test_jobs_need_postgresql(sqlite_cli) -> None:
    for args in (["worker"], ["crawl", "--enqueue"]):
        proc = sqlite_cli(*args)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "needs PostgreSQL" in proc.stderr

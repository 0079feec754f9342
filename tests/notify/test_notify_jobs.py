"""Notify as a job (``tocsin.tasks``) on two ``tocsin worker`` processes: each notice is
sent exactly once, and the job lock is what keeps two notify jobs from running at once.

Two notify jobs wait in the queue (queued under two queueing locks, as two deferrals
that raced would leave them) while two workers are idle. The relay holds each DATA for
a moment (waiting, in vain, for a second sender), so the first job runs for seconds:
had the lock not held the second job back, the idle worker would have started it then.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from notify_helpers import SandboxMail, Seed, tocsin_cli
from sqlalchemy import select, text

from store.db import Database
from store.models import Notice
from tocsin import jobs, tasks
from tocsin.app import App

RECIPIENTS = 3
HOLD = 1.5  # seconds the relay holds each DATA, waiting for a second sender


def _rows(db: Database, sql: str) -> list:
    with db.engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def _wait(what: str, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _defer_two(app: App) -> None:
    """Two notify jobs, both under the stage's lock, waiting at once."""

    async def defer() -> None:
        engine = jobs.job_app(app.config)
        async with engine.open_async():
            task = engine.tasks["tocsin:notify"]
            for queueing_lock in ("first", "second"):
                await task.configure(
                    queue=app.config.worker.queue, queueing_lock=queueing_lock
                ).defer_async()

    asyncio.run(defer())


@pytest.mark.slow
@pytest.mark.pg
def test_two_workers_two_notify_jobs_each_notice_sent_once(
    smtp: SandboxMail, tmp_path: Path, private_pg_url: str
) -> None:
    started = time.monotonic()
    db = Database(private_pg_url)
    seed = Seed(db)
    recipients = [f"abuse@net{r}.example" for r in range(RECIPIENTS)]
    for r, address in enumerate(recipients):
        seed.incident(f"site{r}.example.com", ladder=[(seed.contact(address), 1)])
    cli = tocsin_cli(tmp_path, private_pg_url, **smtp.tables())
    assert cli("init").returncode == 0  # the job queue's tables
    app = App(config_path=cli.config)

    logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    workers = []
    try:
        for log in logs:
            with log.open("wb") as sink:
                workers.append(
                    subprocess.Popen(
                        cli.command("worker"),
                        cwd=tmp_path,
                        env=cli.env(),
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait(
            "two idle workers",
            lambda: len(_rows(db, "SELECT id FROM procrastinate_workers")) == 2,
            60,
        )
        smtp.sandbox.smtp.hold_data(2, timeout=HOLD)
        _defer_two(app)
        done = "SELECT id FROM procrastinate_jobs WHERE status = 'succeeded'"
        _wait("both notify jobs", lambda: len(_rows(db, done)) == 2, 60)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    output = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
    assert [proc.returncode for proc in workers] == [0, 0], output

    delivered = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert delivered == dict.fromkeys(recipients, 1), output  # each recipient, exactly once
    with db.session() as session:
        assert set(session.scalars(select(Notice.state))) == {"sent"}

    # The lock serialised them: the second started only once the first had ended,
    # though a worker sat idle while the first ran (the relay's holds: seconds).
    events = _rows(
        db,
        "SELECT job_id, type::text, at FROM procrastinate_events "
        "WHERE type IN ('started', 'succeeded') ORDER BY job_id, at",
    )
    times = {(job, kind): at for job, kind, at in events}
    first, second = sorted({job for job, _, _ in events})
    ran_first = (times[first, "succeeded"] - times[first, "started"]).total_seconds()
    assert ran_first >= HOLD * RECIPIENTS * 0.9, ran_first
    assert times[second, "started"] >= times[first, "succeeded"], times
    assert _rows(db, "SELECT id FROM procrastinate_jobs WHERE status <> 'succeeded'") == []

    # serve's queueing: one notify job waits at most, however often it is queued
    assert tasks.queue(app, "notify") == 0 and tasks.queue(app, "notify") == 0
    waiting = "SELECT id FROM procrastinate_jobs WHERE status = 'todo'"
    assert len(_rows(db, waiting)) == 1
    app.db.dispose()
    db.dispose()
    print(f"two workers, two notify jobs: {time.monotonic() - started:.1f}s")

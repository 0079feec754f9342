"""Notify as a job (``tocsin.tasks``) on two ``tocsin worker`` processes: each notice is
sent exactly once, and the job lock is what keeps two notify jobs from running at once.

Two notify jobs wait in the queue (queued under two queueing locks, as two deferrals
that raced would leave them) while two workers are idle. The relay holds the first DATA
for seconds (waiting, in vain, for a second sender), so the first job runs that long:
had the lock not held the second job back, the idle worker would have started it then.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import processes
import pytest
from notify_helpers import SandboxMail, Seed, Tocsin, tocsin_cli
from sqlalchemy import select, text

from store.db import Database
from store.models import Notice
from tocsin import jobs, tasks
from tocsin.app import App

RECIPIENTS = 3
HOLD = 2.0  # seconds the relay holds the first DATA, waiting for a second sender
WORKERS = "SELECT id FROM procrastinate_workers"


def _rows(db: Database, sql: str) -> list:
    with db.engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def _wait(what: str, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start_worker(cli: Tocsin, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return processes.start(cli.command("worker"), cli.cwd, cli.env(env), log)


def _seed(db: Database) -> list[str]:
    """One incident per recipient, each due for its first notice; the recipients."""
    seed = Seed(db)
    recipients = [f"abuse@net{r}.example" for r in range(RECIPIENTS)]
    for r, address in enumerate(recipients):
        seed.incident(f"site{r}.example.com", ladder=[(seed.contact(address), 1)])
    return recipients


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
    recipients = _seed(db)
    cli = tocsin_cli(tmp_path, private_pg_url, **smtp.tables())
    assert cli("init").returncode == 0  # the job queue's tables
    app = App(config_path=cli.config)

    logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    workers = []
    try:
        workers = [_start_worker(cli, log) for log in logs]
        _wait("two idle workers", lambda: len(_rows(db, WORKERS)) == 2, 60)
        smtp.sandbox.smtp.hold_data(2, timeout=HOLD)
        _defer_two(app)
        done = "SELECT id FROM procrastinate_jobs WHERE status = 'succeeded'"
        _wait("both notify jobs", lambda: len(_rows(db, done)) == 2, 60)
    finally:
        processes.stop(workers)
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
    assert ran_first >= HOLD, ran_first  # a window in which the idle worker could have begun
    assert times[second, "started"] >= times[first, "succeeded"], times
    assert _rows(db, "SELECT id FROM procrastinate_jobs WHERE status <> 'succeeded'") == []

    # serve's queueing: one notify job waits at most, however often it is queued
    assert tasks.queue(app, "notify") == 0 and tasks.queue(app, "notify") == 0
    waiting = "SELECT id FROM procrastinate_jobs WHERE status = 'todo'"
    assert len(_rows(db, waiting)) == 1
    app.db.dispose()
    db.dispose()
    print(f"two workers, two notify jobs: {time.monotonic() - started:.1f}s")


@pytest.mark.slow
@pytest.mark.pg
def test_a_notify_job_retried_after_its_worker_died_sends_nothing_twice(
    smtp: SandboxMail, tmp_path: Path, private_pg_url: str
) -> None:
    """Worker A dies (SIGKILL) after the relay took a message and before the notice is
    marked sent; B finds A silent, retries the job, and the retry's reconcile asks the
    SMTP journal: the message was accepted, so it is marked sent, not sent again."""
    started = time.monotonic()
    db = Database(private_pg_url)
    recipients = _seed(db)
    tables = smtp.tables()
    tables["worker"] = {"heartbeat": "1s", "stalled_after": "3s"}
    cli = tocsin_cli(tmp_path, private_pg_url, **tables)
    assert cli("init").returncode == 0
    app = App(config_path=cli.config)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = []
    try:
        workers.append(_start_worker(cli, logs[0], {"TOCSIN_FAULT": "after-send"}))
        _wait("worker A", lambda: len(_rows(db, WORKERS)) == 1, 60)
        assert tasks.queue(app, "notify") == 0
        doing = "SELECT id FROM procrastinate_jobs WHERE status = 'doing'"
        _wait("A to take the job", lambda: _rows(db, doing), 60)
        workers.append(_start_worker(cli, logs[1]))  # it starts while A works
        _wait("A to die after its first send", lambda: workers[0].poll() is not None, 60)
        assert len(smtp.messages) == 1
        with db.session() as session:
            assert "sending" in set(session.scalars(select(Notice.state)))
        done = "SELECT id FROM procrastinate_jobs WHERE status = 'succeeded'"
        _wait("B to retry the job", lambda: len(_rows(db, done)) == 1, 60)
    finally:
        processes.stop(workers)
    output = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
    assert workers[0].returncode == -signal.SIGKILL and workers[1].returncode == 0, output

    delivered = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert delivered == dict.fromkeys(recipients, 1), output
    with db.session() as session:
        assert set(session.scalars(select(Notice.state))) == {"sent"}
    retried = _rows(db, "SELECT job_id FROM procrastinate_events WHERE type = 'deferred_for_retry'")
    assert len(retried) == 1  # the one job, retried once, by B
    assert "reconciled as sent after a crash" in output
    app.db.dispose()
    db.dispose()
    print(f"notify job retried after its worker died: {time.monotonic() - started:.1f}s")


@pytest.mark.pg
def test_stalled_jobs_are_retried_and_a_stage_job_gives_way_to_the_waiting_one(
    private_pg_url: str,
) -> None:
    """`retry_stalled` covers every tocsin task: a dead worker's crawl batch goes back to
    the queue; its notify job cannot (another waits under the stage's queueing lock), so
    it is marked failed, which frees the lock for the waiting one."""
    from tocsin.cli.worker import retry_stalled
    from tocsin.config import Config

    config = Config(
        database={"url": private_pg_url}, worker={"heartbeat": "1s", "stalled_after": "1s"}
    )
    db = Database(private_pg_url)
    jobs.install_schema(db, config)

    def statuses() -> dict[int, str]:
        return dict(_rows(db, "SELECT id, status::text FROM procrastinate_jobs"))

    async def scenario() -> tuple[int, int, int]:
        engine = jobs.job_app(config)
        async with engine.open_async():
            queue = config.worker.queue
            notify = engine.tasks["tocsin:notify"].configure(queue=queue)
            batch = (
                await engine.tasks["tocsin:crawl_batch"]
                .configure(queue=queue)
                .defer_async(url_ids=[1])
            )
            dead = await notify.defer_async()
            with db.engine.begin() as conn:  # both taken by a worker that died (no worker row)
                conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing'"))
            waiting = await notify.defer_async()  # serve queued the next round's
            watcher = asyncio.create_task(retry_stalled(engine, config))
            try:
                deadline = time.monotonic() + 20
                while "doing" in statuses().values():
                    assert time.monotonic() < deadline, statuses()
                    await asyncio.sleep(0.2)
            finally:
                watcher.cancel()
        return batch, dead, waiting

    batch, dead, waiting = asyncio.run(scenario())
    assert statuses() == {batch: "todo", dead: "failed", waiting: "todo"}
    db.dispose()

"""`tocsin serve`: a feed on loopback is pulled, crawled, enriched and notified by the
schedule alone; /metrics and /healthz answer; SIGTERM leaves nothing half done.

Runs the real command in its own process group against the sandbox (real Chromium,
real SMTP), with intervals of seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import processes
import pytest
from loopback import FeedServer, serving
from sqlalchemy import func, select, text

from store import job_leases, migrate
from store.db import Database
from store.models import Notice, Url

SITE = "injected-script"  # compromised, on hanami: its abuse desk is told
HOSTING = "abuse@hanami-hosting.co.jp"
TOKEN = "serve-test-admin-token-0123456789abcdef"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tocsin.db'}"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    yield from serving()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode} before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def start_serve(
    sandbox, feed_server: FeedServer, tmp_path: Path, db_url: str, port: int, **serve: object
) -> tuple[subprocess.Popen, Path]:
    """`tocsin serve` in its own process group, with a loopback feed of one sandbox
    site and intervals of seconds; its output goes to the returned log file."""
    migrate.upgrade(Database(db_url))
    feed_url = feed_server.serve("/feed.txt", (sandbox.url(SITE) + "\n").encode())
    config = sandbox.write_config(
        tmp_path / "tocsin.toml",
        db_url,
        notify={"mode": "smtp"},
        board={"port": port, "workers": 1, "token": TOKEN},
        serve={"crawl_every": "2s", "enrich_every": "2s", "notify_every": "2s", **serve},
    )
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[[feeds]]\nurl = "{feed_url}"\nformat = "plain"\nsource = "loop"\n')
        out.write('every = "1h"\n')
    return spawn(tmp_path, config, "serve")


def spawn(tmp_path: Path, config: Path, command: str) -> tuple[subprocess.Popen, Path]:
    """`tocsin -v COMMAND` in its own process group; its output goes to COMMAND.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["COLUMNS"] = "200"  # one line per message
    log_path = tmp_path / f"{command}.log"
    cli = [sys.executable, "-m", "tocsin", "--config", str(config), "-v", command]
    return processes.start(cli, tmp_path, env, log_path), log_path


def stopped(proc: subprocess.Popen, log_path: Path) -> str:
    """Wait for the end (SIGKILL the group if it hangs); its log, printed for a failure."""
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = log_path.read_text("utf-8", "replace")
    print(log[-6000:])
    return log


@pytest.mark.slow
@pytest.mark.browser
def test_serve_runs_the_pipeline_and_stops_cleanly(
    sandbox, feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    """SQLite: every job in serve's own process (PostgreSQL: the workers' test below)."""
    port = _free_port()
    proc, log_path = start_serve(sandbox, feed_server, tmp_path, sqlite_url, port)
    db = Database(sqlite_url)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: sandbox.smtp.to(HOSTING), 90, "the notice to the host", proc)

        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert health["status"] == "ok"
        for job in ("feed:loop", "crawl", "enrich", "notify"):
            assert health["jobs"][job]["state"] == "ok", health
        assert "recheck" in health["jobs"]

        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(f"{base}/metrics", headers=wrong, timeout=5).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        metrics = httpx.get(f"{base}/metrics", headers=good, timeout=5)
        assert metrics.status_code == 200
        text = metrics.text
        assert 'tocsin_checks_total{verdict="malicious"}' in text
        sent = len(sandbox.smtp.messages)  # the host's abuse desk, and the owner's
        assert f'tocsin_notices{{state="sent"}} {sent:.1f}' in text
        assert 'tocsin_job_last_success_age_seconds{job="crawl"}' in text
        assert 'tocsin_job_last_duration_seconds{job="feed:loop"}' in text
        assert "tocsin_urls_due 0.0" in text

        # the crawl runs again on its interval (nothing is due), then SIGTERM mid-round
        first = {row.name: row.last_started_at for row in job_leases.jobs(db)}["crawl"]
        _wait_for(
            lambda: {r.name: r.last_started_at for r in job_leases.jobs(db)}["crawl"] != first,
            20,
            "a second crawl round",
            proc,
        )
        proc.send_signal(signal.SIGTERM)
    finally:
        log = stopped(proc, log_path)
    assert proc.returncode == 0, log[-3000:]
    assert "serve: stopped" in log

    assert [path for path, _ in feed_server.requests] == ["/feed.txt"]  # every = 1h
    assert len(sandbox.smtp.to(HOSTING)) == 1  # notified once, in spite of the rounds
    assert len(sandbox.smtp.messages) == sent
    assert job_leases.held(db) == []
    with db.session() as session:
        assert session.scalar(select(func.count()).where(Notice.state == "sending")) == 0
        assert session.scalar(select(func.count()).where(Url.lease_token.is_not(None))) == 0
        (verdict,) = session.scalars(select(Url.verdict)).all()
        assert verdict == "malicious"
    rows = {row.name: row for row in job_leases.jobs(db)}
    assert {"feed:loop", "crawl", "enrich", "notify", "recheck"} <= set(rows)
    assert all(row.last_status == "ok" for row in rows.values()), {
        n: r.last_error for n, r in rows.items()
    }
    db.dispose()


@pytest.mark.slow
@pytest.mark.browser
def test_sigterm_finishes_the_job_in_hand_and_starts_no_other(
    sandbox, feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    proc, log_path = start_serve(sandbox, feed_server, tmp_path, sqlite_url, _free_port())
    db = Database(sqlite_url)
    try:
        _wait_for(lambda: job_leases.held(db) == ["crawl"], 60, "the crawl", proc)
        proc.send_signal(signal.SIGTERM)  # while the page is being checked
    finally:
        log = stopped(proc, log_path)
    assert proc.returncode == 0, log[-3000:]
    rows = {row.name: row for row in job_leases.jobs(db)}
    assert rows["crawl"].last_status == "ok"  # it ran to its end
    assert "enrich" not in rows and sandbox.smtp.messages == []  # nothing started after
    assert job_leases.held(db) == []
    with db.session() as session:
        (url,) = session.scalars(select(Url)).all()
        assert (url.verdict, url.lease_token) == ("malicious", None)
    db.dispose()


@pytest.mark.parametrize(("key", "value"), [("crawl_enqueue", "true"), ("run_jobs", "workers")])
def test_queueing_jobs_needs_postgresql(sqlite_cli, key: str, value: str) -> None:
    result = sqlite_cli("serve", "--port", "0", env={f"TOCSIN_SERVE_{key.upper()}": value})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tocsin: serve.{key}: needs PostgreSQL (database.url is sqlite): jobs are rows "
        "in PostgreSQL; on one machine run `tocsin crawl`"
    ]


@pytest.mark.slow
@pytest.mark.pg
def test_on_postgresql_the_crawl_job_queues_batches_for_workers(
    sandbox, feed_server: FeedServer, tmp_path: Path, make_cli, private_pg_url: str
) -> None:
    url = private_pg_url
    config = sandbox.write_config(tmp_path / "init.toml", url)
    assert make_cli(tmp_path, config)("init").returncode == 0  # the job queue's tables
    proc, log_path = start_serve(
        sandbox, feed_server, tmp_path, url, _free_port(), run_jobs="here", crawl_enqueue=True
    )
    db = Database(url)

    def queued() -> int:
        with db.engine.connect() as conn:
            sql = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
            return conn.execute(text(sql)).scalar() or 0

    try:
        _wait_for(lambda: queued() == 1, 60, "a queued crawl batch", proc)
        proc.send_signal(signal.SIGTERM)
    finally:
        log = stopped(proc, log_path)
    assert proc.returncode == 0, log[-3000:]
    assert "queued 1 due URLs in 1 batches" in log
    with db.session() as session:  # left to the workers
        assert session.scalars(select(Url.verdict)).all() == ["pending"]
    assert job_leases.held(db) == []
    db.dispose()


def _pg_rows(db: Database, sql: str) -> list:
    with db.engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


@pytest.mark.slow
@pytest.mark.pg
@pytest.mark.browser
def test_on_postgresql_serve_queues_every_job_and_a_worker_runs_them(
    sandbox, feed_server: FeedServer, tmp_path: Path, make_cli, private_pg_url: str
) -> None:
    """serve queues crawl batches, enrich and notify; one `tocsin worker` runs them all.
    /healthz's last success is the worker's end of each job, not serve's queueing."""
    started = time.monotonic()
    url = private_pg_url
    assert (
        make_cli(tmp_path, sandbox.write_config(tmp_path / "init.toml", url))("init").returncode
        == 0
    )
    port = _free_port()
    # one worker runs every job in turn: on a loaded machine a job may wait longer
    # than three 2 s intervals, which /healthz would rightly call stale
    proc, log_path = start_serve(sandbox, feed_server, tmp_path, url, port, stale_after=100)
    worker, worker_log = spawn(tmp_path, tmp_path / "tocsin.toml", "worker")
    db = Database(url)
    try:
        _wait_for(lambda: sandbox.smtp.to(HOSTING), 90, "the notice to the host", proc)
        assert worker.poll() is None
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        for job in ("feed:loop", "crawl", "enrich", "notify"):
            assert health["jobs"][job]["state"] == "ok", health
    finally:
        for running in (proc, worker):
            if running.poll() is None:
                running.send_signal(signal.SIGTERM)
        log = stopped(proc, log_path)
        worker_out = stopped(worker, worker_log)
    assert proc.returncode == 0, log[-3000:]
    assert worker.returncode == 0, worker_out[-3000:]
    assert "queued for workers on 'crawl'" in log

    # the work was the worker's: serve crawled, enriched and sent nothing itself
    ran = dict(
        _pg_rows(
            db,
            "SELECT task_name, count(*) FROM procrastinate_jobs "
            "WHERE status = 'succeeded' GROUP BY task_name",
        )
    )
    assert {"tocsin:crawl_batch", "tocsin:enrich", "tocsin:notify", "tocsin:recheck"} <= set(ran), (
        ran
    )
    assert _pg_rows(db, "SELECT id FROM procrastinate_jobs WHERE status = 'doing'") == []
    assert _pg_rows(db, "SELECT id FROM procrastinate_jobs WHERE status = 'failed'") == []
    # at most one job of a stage waits at a time (queueing lock), however often serve ran
    waiting = _pg_rows(
        db, "SELECT task_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY 1"
    )
    assert all(count == 1 for _, count in waiting), waiting

    # each job's last success is when the worker ended its last run of it
    ends = dict(
        _pg_rows(
            db,
            "SELECT j.task_name, max(e.at) FROM procrastinate_events e "
            "JOIN procrastinate_jobs j ON j.id = e.job_id "
            "WHERE e.type = 'succeeded' GROUP BY j.task_name",
        )
    )
    rows = {row.name: row for row in job_leases.jobs(db)}
    for name in ("enrich", "notify", "recheck"):
        row = rows[name]
        assert row.last_status == "ok", (name, row.last_error)
        assert abs((ends[f"tocsin:{name}"] - row.last_success_at).total_seconds()) < 2, name
    # the crawl: its batch's end, or later, a round that found nothing due (nothing to queue)
    assert rows["crawl"].last_success_at >= ends["tocsin:crawl_batch"] - timedelta(seconds=2)

    assert len(sandbox.smtp.to(HOSTING)) == 1
    assert job_leases.held(db) == []
    with db.session() as session:
        assert session.scalar(select(func.count()).where(Notice.state == "sending")) == 0
        assert session.scalar(select(func.count()).where(Url.lease_token.is_not(None))) == 0
        assert session.scalars(select(Url.verdict)).all() == ["malicious"]
    db.dispose()
    print(f"serve + worker on PostgreSQL: {time.monotonic() - started:.1f}s")

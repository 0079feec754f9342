"""A relay that cannot be reached is said (one line, its address, exit 1); nothing is lost.

Issue 12, point 6: with the relay refusing connections, ``tocsin notify`` used to exit 0
and count the notice as "deferred (4xx)". Both relays here are real: a loopback port
nobody listens on, and a sandbox SMTP server that worked and was then stopped.

Point 4: an outbox or a relay journal that cannot be written is the same case (nothing
was handed over, not the recipient's fault): one line, exit 1, every notice queued
untouched, and sent once each by the next run after the cause is fixed. The failures
are real: a file-size limit (``RLIMIT_FSIZE``, which binds root too) under the outbox,
and a trigger that refuses the journal's rows in the store.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_helpers import SandboxMail, Seed, make_app, tocsin_cli
from sqlalchemy import select, text

from notifier.service import notify
from store import migrate
from store.db import Database
from store.models import Notice
from tocsin.sandbox.smtp import SmtpServer
from tocsin.sandbox.web import free_port


def _notices(db: Database) -> list[tuple[str, int, object, str | None]]:
    with db.session() as s:
        rows = s.scalars(select(Notice).order_by(Notice.id))
        return [(n.state, n.attempts, n.next_attempt_at, n.claimed_by) for n in rows]


def _smtp_tables(host: str, port: int) -> dict[str, dict[str, object]]:
    return {
        "notify": {"mode": "smtp", "from_addr": "abuse-reports@tocsin.example"},
        "smtp": {"host": host, "port": port, "timeout": "5s"},
    }


def test_a_closed_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The command as an operator runs it (SQLite: the store's part is tested below)."""
    db = Database(f"sqlite:///{tmp_path / 'tocsin.db'}")
    migrate.upgrade(db)
    seed = Seed(db)
    for n in range(3):
        contact = seed.contact(f"abuse@host{n}.example")
        seed.incident(f"site{n}.example.com", ladder=[(contact, 1)])
    port = free_port("127.0.0.1")  # bound and released: connections to it are refused
    down = tocsin_cli(tmp_path, db.url, **_smtp_tables("127.0.0.1", port))

    result = down("notify")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tocsin: SMTP relay 127.0.0.1:{port} unreachable: ")
    assert "refused" in lines[0].lower() and "Traceback" not in result.stderr
    assert "deferred" not in result.stdout
    # Nothing lost, nothing left in `sending`, no attempt counted, due again at once.
    assert _notices(db) == [("queued", 0, None, None)] * 3


@pytest.fixture
def own_relay(tmp_path: Path) -> Iterator[tuple[SmtpServer, asyncio.AbstractEventLoop]]:
    """A sandbox SMTP server of this test's own, so stopping it leaves the shared one be."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    relay = SmtpServer(tmp_path / "relay", context)

    async def start() -> None:
        await relay.start(asyncio.get_running_loop())

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield relay, loop
    asyncio.run_coroutine_threadsafe(relay.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def test_a_stopped_sandbox_relay_keeps_every_notice_queued(
    db: Database,
    seed: Seed,
    smtp: SandboxMail,
    own_relay: tuple[SmtpServer, asyncio.AbstractEventLoop],
    tmp_path: Path,
) -> None:
    relay, loop = own_relay
    first = seed.contact("abuse@first.example")
    seed.incident("one.example.com", ladder=[(first, 1)])
    tables = _smtp_tables(relay.host, relay.port)
    assert notify(make_app(db.url, tmp_path, **tables)).send.sent == 1
    assert len(relay.to("abuse@first.example")) == 1

    asyncio.run_coroutine_threadsafe(relay.stop(), loop).result(30)
    for name in ("second", "third"):
        contact = seed.contact(f"abuse@{name}.example")
        seed.incident(f"{name}.example.com", ladder=[(contact, 1)])
    report = notify(make_app(db.url, tmp_path, **tables))
    assert report.failed and report.send.sent == report.send.deferred == 0
    assert report.send.relay_error.startswith(f"SMTP relay {relay.host}:{relay.port} unreachable")
    assert "\n" not in report.send.relay_error
    sent, *queued = _notices(db)
    assert sent[0] == "sent" and queued == [("queued", 0, None, None)] * 2

    # Due at once, and sent once each, when a relay answers again.
    again = notify(make_app(db.url, tmp_path, **smtp.tables()))
    assert again.send.sent == 2 and not again.failed
    assert [len(smtp.to(f"abuse@{n}.example")) for n in ("second", "third")] == [1, 1]
    assert relay.to("abuse@second.example") == []


# -- an outbox or a journal that cannot be written (point 4) ------------------------------

REFUSE_JOURNAL = {
    "sqlite": [
        "CREATE TRIGGER refuse_journal_insert BEFORE INSERT ON relay_journal"
        " BEGIN SELECT RAISE(ABORT, 'the journal is refused'); END",
        "CREATE TRIGGER refuse_journal_update BEFORE UPDATE ON relay_journal"
        " BEGIN SELECT RAISE(ABORT, 'the journal is refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_journal() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'the journal is refused'; END $$",
        "CREATE TRIGGER refuse_journal BEFORE INSERT OR UPDATE ON relay_journal"
        " FOR EACH ROW EXECUTE FUNCTION refuse_journal()",
    ],
}
ALLOW_JOURNAL = {
    "sqlite": ["DROP TRIGGER refuse_journal_insert", "DROP TRIGGER refuse_journal_update"],
    "postgresql": ["DROP TRIGGER refuse_journal ON relay_journal", "DROP FUNCTION refuse_journal"],
}


def _seed_three(seed: Seed) -> list[str]:
    addresses = [f"abuse@host{n}.example" for n in range(3)]
    for n, address in enumerate(addresses):
        seed.incident(f"site{n}.example.com", ladder=[(seed.contact(address), 1)])
    return addresses


def _one_line(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(starts) and line.endswith("; the notices stay queued"), line
    return line


def test_a_journal_the_store_refuses_stops_the_run_and_loses_nothing(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    """``begin`` cannot be written: no DATA, the run stops, and the next run sends once."""
    addresses = _seed_three(seed)
    cli = tocsin_cli(tmp_path, db.url, **smtp.tables())
    for statement in REFUSE_JOURNAL[db.dialect]:
        with db.engine.begin() as conn:
            conn.execute(text(statement))

    line = _one_line(cli("notify"), "tocsin: cannot write the relay journal: ")
    assert "the journal is refused" in line
    assert smtp.messages == []  # RSET before DATA: the relay has nothing
    assert _notices(db) == [("queued", 0, None, None)] * 3  # none left `sending`

    for statement in ALLOW_JOURNAL[db.dialect]:
        with db.engine.begin() as conn:
            conn.execute(text(statement))
    again = cli("notify")
    assert again.returncode == 0, again.stderr
    assert [len(smtp.to(address)) for address in addresses] == [1, 1, 1]
    assert [state for state, *_ in _notices(db)] == ["sent"] * 3


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_outbox_that_cannot_be_written_stops_the_run_and_loses_nothing(
    db: Database, seed: Seed, tmp_path: Path
) -> None:
    """Every outbox file write fails (EFBIG, as ENOSPC would): one line, exit 1, all
    queued; then each notice once. PostgreSQL only: the size limit is the notify
    process's, and a SQLite store in that process would hit it first."""
    _seed_three(seed)
    cli = tocsin_cli(tmp_path, db.url)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    full = subprocess.run(
        cli.command("notify"),
        cwd=tmp_path,
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,  # one limit, set before exec
        check=False,
    )
    outbox = tmp_path / "outbox"
    line = _one_line(full, f"tocsin: cannot write the outbox {outbox}: ")
    assert "File too large" in line
    assert _notices(db) == [("queued", 0, None, None)] * 3
    assert [list((outbox / sub).iterdir()) for sub in ("new", "tmp")] == [[], []]

    again = cli("notify")
    assert again.returncode == 0, again.stderr
    assert len(list((outbox / "new").iterdir())) == 3
    assert [state for state, *_ in _notices(db)] == ["sent"] * 3

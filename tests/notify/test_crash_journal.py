"""Issue 12, point 1: the relay journal lives with the store, not the working directory.

A real ``tocsin notify`` is killed (SIGKILL, ``TOCSIN_FAULT``) with a batch in
``sending``; cron then reruns it from another folder. The relay must receive each
notice exactly once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from notify_helpers import SandboxMail, Seed, Tocsin
from sqlalchemy import select, text

from store.db import Database
from store.models import Notice
from tocsin.sandbox.core import to_toml

KILLED = -9
RECIPIENTS = [f"abuse@crash{i}.example" for i in range(4)]


def _cli(tmp_path: Path, db: Database, smtp: SandboxMail) -> Path:
    """A config file in its own folder, with no journal key: the defaults an operator has."""
    tables = smtp.tables()
    data = {
        "database": {"url": db.url},
        "notify": {**tables["notify"], "outbox_dir": str(tmp_path / "outbox")},
        "smtp": tables["smtp"],
        "board": {"base_url": "https://board.tocsin.example", "secret": "s3cret"},
    }
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "tocsin.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def _seed(seed: Seed) -> None:
    for i, email in enumerate(RECIPIENTS):
        seed.incident(f"crash{i}.example.com", ladder=[(seed.contact(email), 1)])


def _states(db: Database) -> Counter[str]:
    with db.session() as s:
        return Counter(s.scalars(select(Notice.state)))


def test_rerun_from_another_folder_sends_no_duplicate(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    _seed(seed)
    config = _cli(tmp_path, db, smtp)
    first, cron = tmp_path / "shell", tmp_path / "cron"
    first.mkdir()
    cron.mkdir()

    crashed = Tocsin(first, config)("notify", env={"TOCSIN_FAULT": "after-send"})
    assert crashed.returncode == KILLED
    assert _states(db)["sending"] == len(RECIPIENTS)  # one handed over, none marked
    assert len(smtp.messages) == 1
    assert not list(first.iterdir())  # nothing is kept in the working directory

    again = Tocsin(cron, config)("notify")
    assert again.returncode == 0, again.stderr
    assert _states(db) == Counter({"sent": len(RECIPIENTS)})
    per_recipient = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert per_recipient == Counter(RECIPIENTS)  # every one once: 0 duplicates
    ids = [m.message["Message-ID"] for m in smtp.messages]
    assert len(set(ids)) == len(ids)


def test_unreadable_journal_refuses_to_run(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    _seed(seed)
    config = _cli(tmp_path, db, smtp)
    crashed = Tocsin(tmp_path, config)("notify", env={"TOCSIN_FAULT": "during-data"})
    assert crashed.returncode == KILLED
    with db.session() as s:
        s.execute(text("ALTER TABLE relay_journal RENAME TO relay_journal_lost"))
    try:
        refused = Tocsin(tmp_path, config)("notify")
    finally:
        with db.session() as s:
            s.execute(text("ALTER TABLE relay_journal_lost RENAME TO relay_journal"))
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert "relay journal" in line
    assert _states(db)["sending"] == len(RECIPIENTS)  # nothing settled, nothing lost
    assert len(smtp.messages) == 0  # killed during DATA: the sandbox relay dropped it

    settled = Tocsin(tmp_path, config)("notify")  # the journal is back: begun -> unknown
    assert settled.returncode == 1
    assert len(smtp.messages) == len(RECIPIENTS) - 1  # the unknown one is never re-sent

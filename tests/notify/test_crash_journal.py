"""Issue 12, point 1: the relay journal lives with the store, not the working directory.

A real ``tocsin notify`` is killed (SIGKILL, ``TOCSIN_FAULT``) with a batch in
``sending``; cron then reruns it from another folder. The relay must receive each
notice exactly once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from notify_helpers import SandboxMail, Seed, Tocsin
from sqlalchemy import select, text

from notifier.transport import Journal
from store.db import Database
from store.models import Notice
from tocsin.config import load
from tocsin.errors import ConfigError
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


def _lose_journal(db: Database, lost: bool) -> None:
    """Make the store's journal unreadable (a damaged or half-restored store), or restore it."""
    names = ("relay_journal", "relay_journal_lost")
    old, new = names if lost else names[::-1]
    with db.session() as s:
        s.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_rerun_from_another_folder_sends_no_duplicate(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    _seed(seed)
    config = _cli(tmp_path, db, smtp)
    shell, cron = tmp_path / "shell", tmp_path / "cron"
    shell.mkdir()
    cron.mkdir()

    crashed = Tocsin(shell, config)("notify", env={"TOCSIN_FAULT": "after-send"})
    assert crashed.returncode == KILLED
    assert _states(db)["sending"] == len(RECIPIENTS)  # one handed over, none marked
    assert len(smtp.messages) == 1
    assert not list(shell.iterdir())  # nothing is kept in the working directory

    # A journal it cannot read: refuse (one line, exit 2), settle nothing, send nothing.
    _lose_journal(db, lost=True)
    try:
        refused = Tocsin(cron, config)("notify")
    finally:
        _lose_journal(db, lost=False)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert "cannot read the relay journal" in line
    assert _states(db)["sending"] == len(RECIPIENTS)
    assert len(smtp.messages) == 1

    again = Tocsin(cron, config)("notify")  # cron: another working directory
    assert again.returncode == 0, again.stderr
    assert _states(db) == Counter({"sent": len(RECIPIENTS)})
    per_recipient = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert per_recipient == Counter(RECIPIENTS)  # every one exactly once: 0 duplicates


def test_a_legacy_journal_resolves_beside_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "tocsin.toml"
    path.write_text('[notify]\njournal = "old/notify-journal.log"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the working directory must play no part
    config = load(path, environ={})
    assert Path(config.notify.journal) == folder.resolve() / "old" / "notify-journal.log"
    assert load(None, environ={}).notify.journal == ""  # the default: the store only


def test_the_journal_reads_the_store_then_a_legacy_file(db: Database, tmp_path: Path) -> None:
    legacy = tmp_path / "notify-journal.log"
    legacy.write_text(
        "2026-11-20T09:00:00+00:00 begin h:1 <old@x>\n"
        "2026-11-20T09:00:01+00:00 accepted h:1 <old@x>\n"
        "2026-11-20T09:00:02+00:00 begin h:1 <torn@x>\n"
        "2026-11-20T09:00:03+00:00 acc",  # a torn last line
        encoding="utf-8",
    )
    journal = Journal(db, legacy)
    journal.write("begin", "<new@x>")
    journal.write("accepted", "<new@x>")  # one row per Message-ID, updated
    journal.write("begin", "<begun@x>")
    wanted = {"<old@x>", "<torn@x>", "<new@x>", "<begun@x>", "<none@x>"}
    assert journal.states(wanted) == {
        "<old@x>": "accepted",
        "<torn@x>": "begin",
        "<new@x>": "accepted",
        "<begun@x>": "begin",
    }
    legacy.unlink()
    legacy.mkdir()  # there, but not readable as a file: refuse, never guess "absent"
    with pytest.raises(ConfigError, match=r"notify\.journal"):
        journal.states(wanted)

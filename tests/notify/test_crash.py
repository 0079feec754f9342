"""Exactly once across crashes: a real ``tocsin notify`` killed at each point of the send.

``TOCSIN_FAULT`` makes the process SIGKILL itself there (see notifier/faults.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notify_helpers import SandboxMail, Seed, outbox_messages, tocsin_cli
from sqlalchemy import select

from store.db import Database
from store.models import Incident, Notice

KILLED = -9


def _one_incident(seed: Seed, email: str = "abuse@crash.example") -> int:
    hosting = seed.contact(email)
    return seed.incident("crash.example.com", ladder=[(hosting, 1)])


def _notice(db: Database) -> Notice:
    with db.session() as s:
        return s.scalars(select(Notice)).one()


def test_outbox_killed_between_send_and_mark(db: Database, seed: Seed, tmp_path: Path) -> None:
    incident = _one_incident(seed)
    cli = tocsin_cli(tmp_path, db.url)
    crashed = cli("notify", env={"TOCSIN_FAULT": "after-send"})
    assert crashed.returncode == KILLED
    assert _notice(db).state == "sending"
    assert len(outbox_messages(tmp_path / "outbox")) == 1  # handed over, not marked

    again = cli("notify")
    assert again.returncode == 0, again.stderr
    notice = _notice(db)
    assert notice.state == "sent"
    [message] = outbox_messages(tmp_path / "outbox")  # no second copy
    assert message["Message-ID"] == notice.message_id
    with db.session() as s:
        assert s.get(Incident, incident).level == 1


@pytest.mark.parametrize(
    ("fault", "state_after", "delivered"),
    [
        ("after-send", "sent", 1),  # the journal says accepted: reconciled, not re-sent
        ("before-send", "sent", 1),  # never reached the relay: sent by the next run
        ("during-data", "unknown", 0),  # may or may not be there: reported, never re-sent
    ],
)
def test_smtp_killed_at_each_point(
    db: Database,
    seed: Seed,
    smtp: SandboxMail,
    tmp_path: Path,
    fault: str,
    state_after: str,
    delivered: int,
) -> None:
    _one_incident(seed)
    cli = tocsin_cli(tmp_path, db.url, **smtp.tables())
    crashed = cli("notify", env={"TOCSIN_FAULT": fault})
    assert crashed.returncode == KILLED
    message_id = _notice(db).message_id
    assert _notice(db).state == "sending"

    again = cli("notify")
    notice = _notice(db)
    assert notice.state == state_after
    assert notice.message_id == message_id  # the same message, never re-rendered
    received = smtp.to("abuse@crash.example")
    assert len(received) == delivered
    if delivered:
        assert received[0].message["Message-ID"] == message_id
        assert again.returncode == 0, again.stderr
    else:
        assert again.returncode == 1  # the summary names the unknown notice
        assert notice.ticket in again.stderr

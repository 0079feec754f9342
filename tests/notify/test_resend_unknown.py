"""Issue 12, point 7: ``notify --resend-unknown`` is the way out of ``unknown``.

A real ``tocsin notify`` is killed (SIGKILL, ``TOCSIN_FAULT=during-data``) after
the relay journal says ``begin``: the next run can only call the notice
``unknown``. The operator then re-sends the ones old enough, under the same
Message-ID, through the normal claim -> journal -> sent path; younger ones stay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from notify_helpers import T0, SandboxMail, Seed, Tocsin, make_app, tocsin_cli
from sqlalchemy import select

from notifier.service import notify
from store.db import Database
from store.models import Event, Notice
from tocsin.cli.notify import _resend_bound
from tocsin.errors import UsageError

KILLED = -9
HOUR = timedelta(hours=1)
OLD, YOUNG = "abuse@old-unknown.example", "abuse@young-unknown.example"


def _notices(db: Database) -> dict[str, Notice]:
    with db.session() as s:
        return {n.recipient: n for n in s.scalars(select(Notice))}


def _resent_events(db: Database) -> list[dict]:
    with db.session() as s:
        rows = s.scalars(select(Event).where(Event.kind == "notice.resent_unknown"))
        return [dict(e.data or {}) for e in rows]


def _at(cli: Tocsin, minutes: int) -> Tocsin:
    return replace(cli, now=T0 + timedelta(minutes=minutes))


def _row(stdout: str, label: str) -> int:
    """The count on the summary table's line that starts with ``label``."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip(" │|┃").replace("┃", "│").split("│")]
        if len(cells) == 2 and cells[0].startswith(label):
            return int(cells[1])
    return 0


def test_resend_unknown_resends_old_ones_once_under_the_same_message_id(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    seed.incident("old-unknown.example.com", ladder=[(seed.contact(OLD), 1)])
    seed.incident("young-unknown.example.com", ladder=[(seed.contact(YOUNG), 1)])
    cli = tocsin_cli(tmp_path, db.url, **smtp.tables())

    # T0: killed during DATA of the first notice; the second is claimed, never begun.
    first = _at(cli, 0)("notify", env={"TOCSIN_FAULT": "during-data"})
    assert first.returncode == KILLED
    # T0+50m: the first becomes unknown; the second is re-queued, sent, and killed too.
    second = _at(cli, 50)("notify", env={"TOCSIN_FAULT": "during-data"})
    assert second.returncode == KILLED
    before = _notices(db)
    assert before[OLD].state == "unknown"
    assert before[YOUNG].state == "sending"
    assert smtp.messages == []  # neither reached the relay: a lost notice without this option

    # T0+70m, default bound 1h: the old one (70 min) is re-sent, the young one (20 min) left.
    run = _at(cli, 70)("notify", "--resend-unknown")
    after = _notices(db)
    assert after[OLD].state == "sent"
    assert after[YOUNG].state == "unknown"  # reconciled by this run, and too young to re-send
    assert run.returncode == 1  # the newly unknown notice is reported, as before
    assert _row(run.stdout, "unknown re-sent") == 1
    assert _row(run.stdout, "unknown left") == 1
    [received] = smtp.to(OLD)
    assert received.message["Message-ID"] == before[OLD].message_id  # the same message
    assert after[OLD].ticket == before[OLD].ticket
    assert smtp.to(YOUNG) == []
    [event] = _resent_events(db)
    assert event["message_id"] == before[OLD].message_id

    # Again at once (in-process, as the CLI calls it): nothing re-sent, the young one left.
    app = make_app(db.url, tmp_path, T0 + timedelta(minutes=71), **smtp.tables())
    again = notify(app, resend_unknown=HOUR)
    assert (again.send.resent_unknown, again.send.unknown_left, again.send.sent) == (0, 1, 0)
    assert len(smtp.to(OLD)) == 1
    assert _notices(db)[YOUNG].state == "unknown"

    # A plain run never touches unknown notices; a bound of 0s takes the young one too.
    assert notify(app).send.sent == 0
    assert smtp.to(YOUNG) == []
    last = notify(app, resend_unknown=timedelta(0))
    assert (last.send.resent_unknown, last.send.unknown_left) == (1, 0)
    assert {n.state for n in _notices(db).values()} == {"sent"}
    per_recipient = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert per_recipient == Counter([OLD, YOUNG])  # each exactly once
    [young] = smtp.to(YOUNG)
    assert young.message["Message-ID"] == before[YOUNG].message_id
    assert len(_resent_events(db)) == 2


def test_older_than_is_parsed_as_config_durations_are() -> None:
    assert _resend_bound(False, "an hour", dry_run=False) is None  # not asked: not parsed
    assert _resend_bound(True, "1h", dry_run=False) == HOUR
    assert _resend_bound(True, "0s", dry_run=False) == timedelta(0)
    assert _resend_bound(True, "90m", dry_run=False) == timedelta(minutes=90)
    with pytest.raises(UsageError, match=r"--older-than: expected a duration such as"):
        _resend_bound(True, "an hour", dry_run=False)
    with pytest.raises(UsageError, match="--dry-run"):
        _resend_bound(True, "1h", dry_run=True)

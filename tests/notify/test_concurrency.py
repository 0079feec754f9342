"""Four ``tocsin notify`` processes at once send each notice exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from notify_helpers import SandboxMail, Seed, tocsin_cli
from sqlalchemy import func, select

from store.db import Database
from store.models import Incident, Notice, NoticeItem

RECIPIENTS = 24
PER_RECIPIENT = 3


def test_concurrent_notifiers_send_each_notice_once(
    db: Database, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    for r in range(RECIPIENTS):
        contact = seed.contact(f"abuse@net{r}.example")
        for n in range(PER_RECIPIENT):
            seed.incident(f"s{n}.site{r}.example.com", ladder=[(contact, 1)])
    tables = smtp.tables()
    tables["notify"].update(compose_batch=2, send_batch=2)
    cli = tocsin_cli(tmp_path, db.url, **tables)
    # The relay holds the first DATA until a second notifier is also sending, so
    # the run below cannot pass by one process finishing before the others start.
    smtp.hold_data(concurrent=2)

    # The case is four on PostgreSQL; SQLite (BEGIN IMMEDIATE) gets two.
    runs = [cli.start("notify") for _ in range(2 if db.is_sqlite else 4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    for code, stderr in results:
        assert code == 0, stderr[-3000:]

    delivered = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert len(delivered) == RECIPIENTS
    assert set(delivered.values()) == {1}  # one message per recipient, exactly once
    message_ids = [m.message["Message-ID"] for m in smtp.messages]
    assert len(set(message_ids)) == len(message_ids)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == RECIPIENTS
        assert set(s.scalars(select(Notice.state))) == {"sent"}
        assert s.scalar(select(func.count()).select_from(NoticeItem)) == RECIPIENTS * PER_RECIPIENT
        assert set(s.scalars(select(Incident.level))) == {1}
        owners = set(s.scalars(select(Notice.claimed_by)))
    assert len(owners) >= 2  # the work really was shared
    assert cli("notify").returncode == 0
    assert len(smtp.messages) == RECIPIENTS

"""``tocsin report asn``: the per-network digest, printed and mailed once a day."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from notify_helpers import DAY, T0, Seed, make_app, outbox_messages, parts, tocsin_cli

from notifier import digest
from store.db import Database


# The command on SQLite: what it reads and queues, and how it prints the rows, run on both
# engines in test_digest_rows; here, four `tocsin report` runs (the command's options).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_asn_digest_as_csv_text_and_mail(db: Database, seed: Seed, tmp_path: Path) -> None:
    hosting = seed.contact("abuse@host.example")
    seed.incident("a.example.com", ladder=[(hosting, 1)], asn=64500, ip="127.10.1.5")
    seed.incident(
        "b.example.com", ladder=[(hosting, 1)], asn=64500, ip="127.10.1.6", family="phishing"
    )
    seed.incident(
        "c.example.net", ladder=[(hosting, 1)], asn=64501, as_name="OTHER-NET", ip="127.10.2.7"
    )
    seed.incident("old.example.org", ladder=[(hosting, 1)], asn=64500, at=T0 - 30 * DAY)
    cli = tocsin_cli(tmp_path, db.url, notify={"digest_subscribers": ["64500=noc@host.example"]})

    result = cli("report", "asn", "--since", "7d", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["asn"], r["ip"], r["host"]) for r in rows] == [
        ("AS64500", "127.10.1.5", "a.example.com"),
        ("AS64500", "127.10.1.6", "b.example.com"),
        ("AS64501", "127.10.2.7", "c.example.net"),
    ]
    assert rows[1]["family"] == "phishing" and rows[0]["status"] == "open"
    assert rows[0]["first_seen"] == "2026-11-20T09:00:00Z"

    text = cli("report", "asn", "--since", "7d", "--asn", "64501").stdout
    assert "AS64501 OTHER-NET" in text and "c.example.net" in text and "a.example" not in text

    sent = cli("report", "asn", "--since", "7d", "--send")
    assert sent.returncode == 0, sent.stderr
    again = cli("report", "asn", "--since", "7d", "--send")  # same day: not twice
    assert again.returncode == 0
    [digest] = outbox_messages(tmp_path / "outbox")
    assert digest["To"] == "noc@host.example" and "AS64500" in digest["Subject"]
    body = parts(digest)
    assert "a[.]example[.]com" in body["text"] and "c[.]example" not in body["text"]
    assert body["csv"].count("\n") == 3


def test_digest_rows(db_url: str, seed: Seed, tmp_path: Path) -> None:
    hosting = seed.contact("abuse@host.example")
    seed.incident("a.example.com", ladder=[(hosting, 1)], asn=64500, ip="127.10.1.5")
    seed.incident("z.example.com", ladder=[(hosting, 1)], asn=64501, ip="127.10.2.5")
    seed.incident("old.example.org", ladder=[(hosting, 1)], asn=64500, at=T0 - 30 * DAY)
    app = make_app(db_url, tmp_path, notify={"digest_subscribers": ["AS64500=noc@h.example"]})
    rows = digest.collect(app, T0 - 7 * DAY)
    assert [(r.asn, r.host, r.status) for r in rows] == [
        (64500, "a.example.com", "open"),
        (64501, "z.example.com", "open"),
    ]
    assert digest.collect(app, T0 - 7 * DAY, asn=64501)[0].host == "z.example.com"
    # What `report asn` prints, from this engine's rows (timestamps read back alike).
    header, first, _ = digest.to_csv(rows).splitlines()
    assert header.split(",") == digest.COLUMNS
    assert first.split(",")[4] == "2026-11-20T09:00:00Z"
    assert "z.example.com" in digest.to_text(rows) and "2026-11-20 09:00" in digest.to_text(rows)
    assert digest.queue(app, rows, T0 - 7 * DAY) == 1
    assert digest.queue(app, rows, T0 - 7 * DAY) == 0  # once a day

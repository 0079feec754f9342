"""`tocsin ingest` as a user runs it: the summary, exit codes, stdin, http, rejects."""

from __future__ import annotations

import json
from pathlib import Path

from ingest_support import FEEDS, FeedServer
from sqlalchemy import select

from store.db import Database
from store.models import IngestRun, Url

SAMPLES = [FEEDS / name for name in ("urlhaus.csv", "phishtank_online_valid.json", "openphish.txt")]


def test_ingest_summary_rejects_and_exit_codes(cli, db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"http://fine.example/\njavascript:alert(1)\n\xff\xfe\n")
    missing = tmp_path / "missing.csv"
    result = cli(
        "--now",
        "2026-11-21T12:00:00Z",
        "ingest",
        "--campaign",
        "Autumn wave",
        *map(str, SAMPLES),
        str(missing),
        str(bad),
    )
    assert result.returncode == 1, result.stderr
    assert "8 new, 2 duplicate, 2 rejected" in result.stdout
    assert "rejects: run 1 — see `tocsin rejects --run 1`" in result.stdout
    assert "urlhaus-csv" in result.stdout and "phishtank-json" in result.stdout
    assert "FAILED" in result.stdout
    assert f"cannot ingest {missing}" in result.stderr and "No such file" in result.stderr

    shown = cli("rejects", "--run", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(r["line"], r["reason"], r["source"]) for r in records] == [
        (2, "bad-scheme", str(bad)),
        (3, "undecodable", str(bad)),
    ]
    assert records[1]["raw"] == "\\xff\\xfe" and records[1]["raw_len"] == 2

    db = Database(db_url)
    try:
        with db.session() as session:
            runs = list(session.scalars(select(IngestRun).order_by(IngestRun.id)))
            hints = {u.campaign_hint for u in session.scalars(select(Url))}
    finally:
        db.dispose()
    assert [(r.new, r.duplicate, r.rejected, r.campaign) for r in runs] == [
        (8, 2, 2, "Autumn wave")
    ]
    assert hints == {"Autumn wave"}


def test_stdin_and_usage_errors(sqlite_cli) -> None:
    feed = (FEEDS / "openphish.txt").read_bytes()
    result = sqlite_cli("ingest", "-", "--format", "openphish", "--source", "op", input=feed)
    assert result.returncode == 0, result.stderr
    assert "3 new, 0 duplicate, 0 rejected" in result.stdout and "stdin" not in result.stderr
    hostile = b"http://fine.example/\n[/x] [bold]not markup\x1b[31m\n"
    assert sqlite_cli("ingest", "-", input=hostile).returncode == 0
    table = sqlite_cli("rejects")
    assert table.returncode == 0, table.stderr
    assert "[/x] [bold]not markup\\x1b[31m" in table.stdout and "control-char" in table.stdout
    wrong = sqlite_cli("ingest", "-", "--format", "xml", input=feed)
    assert wrong.returncode == 2 and "--format" in wrong.stderr


def test_http_source_from_the_command_line(sqlite_cli, feed_server: FeedServer) -> None:
    with sqlite_cli.config.open("a", encoding="utf-8") as config:
        config.write("\n[network]\nallow_private = true\n")
    url = feed_server.serve("/phishtank.json", (FEEDS / "phishtank_online_valid.json").read_bytes())
    result = sqlite_cli("ingest", url, feed_server.url("/gone.json"))
    assert result.returncode == 1
    assert "2 new, 0 duplicate, 0 rejected" in result.stdout
    assert "HTTP 404" in result.stderr

"""Hostile text from feeds, pages and registries never reaches a terminal or a
spreadsheet live (issue 12, point 5).

One store per engine (SQLite, PostgreSQL) is filled the way a user would: a real
``tocsin ingest`` of a feed whose file name and lines carry terminal escapes,
bidi overrides and formula cells, plus an incident whose AS name and campaign
name were chosen by an attacker. The real commands then run as subprocesses.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
import tty
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest
from rich.progress import Progress
from rich.text import Text

from notifier import digest
from store.db import Database
from store.incidents import record_malicious
from store.models import Campaign, Check, Site, Url
from tocsin.safe_text import csv_cell, json_text, terminal_text
from tocsin.ui import SafeConsole, table

# Clear screen, set the window title (OSC ... BEL), carriage return, bidi override.
AS_NAME = '=HYPERLINK("http://evil.example/","AS")\x1b[2J\x1b]0;pwned\x07\r\u202eFOO-NET'
CAMPAIGN = ' =cmd|" /C calc"!A0\x1b]8;;http://evil.example/\x07\u2066camp\u2069\x9b31m'
HINT = "@SUM(1+1)\u202ehint"
REJECT_LINES = [
    "http://a.example/\x1b]0;pwned\x07\x1b[2Jpath",
    "junk\rjunk \u202egnp.exe\u200f\u061c",
    "+not a url \x7f\x85 \u2067x",
]
FEED_NAME = "feed-\x1b[2J-\u202e-\x07.txt"
MISSING_NAME = "missing-\x1b]0;title\x07-\r.txt"
#: Bytes no terminal output may carry raw: C0 (but TAB/LF), DEL, C1, bidi controls.
RAW_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")


def _seed_incident(db: Database, now: datetime) -> None:
    """What crawl and enrich would have stored for a site on a hostile network."""
    with db.session() as s:
        site = Site(host="victim.example", ips=["127.0.0.9"], asn=64511, as_name=AS_NAME)
        site.registered_domain, site.first_seen, site.enrich_state = "victim.example", now, "done"
        camp = Campaign(name=CAMPAIGN, family="injected-script", first_seen=now, last_seen=now)
        camp.iocs = {}
        s.add_all([site, camp])
        s.flush()
        raw = "http://victim.example/"
        url = Url(url=raw, url_hash=sha256(raw.encode()).hexdigest(), host=site.host)
        url.site_id, url.verdict, url.family, url.campaign_hint = site.id, "malicious", "x", HINT
        url.first_seen = url.last_seen = now
        s.add(url)
        s.flush()
        check = Check(url_id=url.id, kind="confirm", started_at=now, finished_at=now)
        check.route, check.verdict, check.family, check.confidence = "browser", "malicious", "x", 1
        check.rules, check.iocs, check.evidence_lines, check.redirect_chain = [], {}, [], []
        check.meta = {}
        s.add(check)
        s.flush()
        record_malicious(s, site=site, campaign=camp, url=url, check=check, now=now)


@pytest.fixture(scope="module")
def hostile(module_db_url: str, tmp_path_factory: pytest.TempPathFactory, make_cli) -> tuple:
    """The CLI on a store holding hostile names, and the output of the hostile ingest."""
    folder = tmp_path_factory.mktemp("hostile")
    config = folder / "tocsin.toml"
    config.write_text(f'[database]\nurl = "{module_db_url}"\n', encoding="utf-8")
    db = Database(module_db_url)
    _seed_incident(db, datetime.now(UTC))
    db.dispose()
    feed = folder / FEED_NAME
    feed.write_bytes(("http://fine.example/a\n" + "\n".join(REJECT_LINES) + "\n").encode())
    cli = make_cli(folder, config)
    ingested = cli("ingest", str(feed), str(folder / MISSING_NAME))
    assert ingested.returncode == 1, ingested.stderr  # the missing source failed, alone
    return cli, ingested


def _assert_terminal_safe(text: str) -> None:
    found = RAW_UNSAFE.findall(text)
    assert not found, f"raw control/bidi characters reached the terminal: {found!r}"


def test_ingest_table_escapes_controls(hostile) -> None:
    _, ingested = hostile
    _assert_terminal_safe(ingested.stdout + ingested.stderr)
    # The hostile file name is shown, escaped, not dropped.
    assert "feed-\\x1b[2J-\\u202e-\\x07.txt" in ingested.stdout
    assert (
        "cannot ingest" in ingested.stderr and "missing-\\x1b]0;title\\x07-\\x0d" in ingested.stderr
    )


def test_status_and_rejects_tables_escape_controls(hostile) -> None:
    cli, _ = hostile
    status = cli("status")
    assert status.returncode == 0, status.stderr
    _assert_terminal_safe(status.stdout + status.stderr)
    assert "\\x1b]8;;http://evil.example/\\x07" in status.stdout  # the campaign, escaped
    rejects = cli("rejects")
    assert rejects.returncode == 0, rejects.stderr
    _assert_terminal_safe(rejects.stdout + rejects.stderr)
    assert "3 rejected lines" in rejects.stdout
    failed = cli("--config", str(cli.cwd / "no" / FEED_NAME), "status")  # an error line
    assert failed.returncode == 2 and "\\x1b[2J-\\u202e-\\x07.txt" in failed.stderr
    _assert_terminal_safe(failed.stdout + failed.stderr)


def test_rejects_json_is_escaped_and_round_trips(hostile) -> None:
    cli, _ = hostile
    result = cli("rejects", "--json")
    assert result.returncode == 0, result.stderr
    _assert_terminal_safe(result.stdout)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["raw"] for r in records) == sorted(REJECT_LINES)
    assert {r["source"] for r in records} == {str(Path(cli.cwd) / FEED_NAME)}


def _assert_no_formula_cells(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell.lstrip(" ").startswith(FORMULA), cell
    return rows


def test_export_csv_neutralises_formula_cells(hostile) -> None:
    cli, _ = hostile
    result = cli("export", "--format", "csv")
    assert result.returncode == 0, result.stderr
    _assert_no_formula_cells(result.stdout)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    victim = next(r for r in rows if r["host"] == "victim.example")
    assert victim["as_name"] == "'" + AS_NAME  # neutralised, otherwise exact
    assert victim["campaign"] in ("'" + CAMPAIGN, "'" + HINT)


def _on_a_terminal(cli, *args: str) -> str:
    """Run ``tocsin`` with stdout on a pseudo-terminal (raw: no CR added), as a person would."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    command = [sys.executable, "-m", "tocsin", "--config", str(cli.config), *args]
    proc = subprocess.Popen(command, cwd=cli.cwd, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_export_csv_on_a_terminal_escapes_controls(hostile) -> None:
    cli, _ = hostile
    shown = _on_a_terminal(cli, "export", "--format", "csv")
    _assert_terminal_safe(shown)
    _assert_no_formula_cells(shown)
    assert "'=HYPERLINK(" in shown and "\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\u202eFOO-NET" in shown


def test_asn_digest_csv_neutralises_formula_cells() -> None:
    """The digest's CSV (``report asn --format csv`` and the mailed attachment)."""
    row = digest.Row(64511, AS_NAME, "127.0.0.9", "victim.example", datetime.now(UTC), *"oxt")
    for defanged in (False, True):
        rows = _assert_no_formula_cells(digest.to_csv([row], defanged=defanged))
        assert rows[1][1].startswith("'=HYPERLINK(") and rows[1][1].endswith("FOO-NET")


def test_console_escapes_text_that_bypasses_markup() -> None:
    """Styled output on a real terminal: Rich's own colour codes stay, hostile text does not."""
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, color_system="standard", width=200)
    console.print("[bold]ok[/] \x1b[2J\u202e")
    console.print(Text("plain \x1b]0;t\x07", style="red"))
    console.print(table("t", ["name"], [["[link=http://evil.example/]x[/link]\r"]]))
    written = buffer.getvalue()
    assert "\x1b[1m" in written  # bold survived: styles are not text
    without_styles = re.sub(r"\x1b\[[0-9;]*m", "", written)
    _assert_terminal_safe(without_styles)
    # (Rich itself drops BEL and CR from Text; ESC it leaves to us.)
    assert "\\x1b[2J\\u202e" in without_styles and "plain \\x1b]0;t" in without_styles
    assert "[link=http://evil.example/]x[/link]\\x0d" in without_styles  # shown, not run
    assert "\x1b]8;" not in written  # no hyperlink was made from a cell


def test_progress_bar_keeps_its_cursor_codes_but_not_hostile_ones() -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, width=80)
    with Progress(console=console, auto_refresh=False) as bar:
        task = bar.add_task("feed \x1b[2J\u202e", total=2)
        bar.advance(task)
        bar.refresh()
    written = buffer.getvalue()
    assert "\x1b[?25l" in written and "\r\x1b[2K" in written  # Rich's own: hide cursor, redraw
    assert "feed \\x1b[2J\\u202e" in written and "\u202e" not in written


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "\nx", "  =1", "\uff1d1", "ok", "", 5, None],
)
def test_csv_cell_and_json_text(value: object) -> None:
    cell = csv_cell(value)
    if isinstance(value, str) and value.lstrip(" ")[:1] in (*FORMULA, "\uff1d"):
        assert cell == "'" + value
    else:
        assert cell == value
    hostile = f"{value}\u202e\x1b\x85\u2066"
    line = json_text({"v": hostile})
    assert json.loads(line) == {"v": hostile} and not RAW_UNSAFE.search(line)
    assert not RAW_UNSAFE.search(terminal_text(hostile))

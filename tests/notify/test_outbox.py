"""Batching, the outbox in maildir mode, suppression and the dry run (both engines)."""

from __future__ import annotations

from pathlib import Path

from notify_helpers import T0, ScriptedCrawler, Seed, at, make_app, outbox_messages, parts
from sqlalchemy import func, select

from notifier import xarf_reports
from notifier.service import notify
from store.models import Event, Incident, Notice, NoticeItem, PortalToken
from tocsin.app import App


def _three_on_one_provider(seed: Seed) -> tuple[int, list[int]]:
    hosting = seed.contact("abuse@hosting.example")
    ids = [
        seed.incident("shop.example.com", ladder=[(hosting, 1)], family="card-skimmer"),
        seed.incident("blog.example.org", ladder=[(hosting, 1)], family="phishing"),
        seed.incident("files.example.net", ladder=[(hosting, 1)], family="malware-download"),
    ]
    return hosting, ids


def test_three_incidents_on_one_provider_make_one_message(
    app: App, seed: Seed, tmp_path: Path
) -> None:
    _three_on_one_provider(seed)
    report = notify(app)
    assert report.send.sent == 1 and report.compose.items == 3

    [message] = outbox_messages(tmp_path / "outbox")
    assert message["To"] == "abuse@hosting.example"
    assert message["Auto-Submitted"] == "auto-generated"
    ticket = message["X-Tocsin-Ticket"]
    assert ticket in message["Subject"]
    assert f"+{ticket}@" in message["Reply-To"]
    assert message["Message-ID"] and message["Date"]
    body = parts(message)
    assert len(body["xarf"]) == 3
    types = sorted(r["type"] for r in body["xarf"])
    assert types == ["malware", "phishing", "remote_compromise"]
    for report_json in body["xarf"]:
        assert xarf_reports.validate(report_json) == []
        if report_json["type"] == "remote_compromise":
            assert report_json["compromise_type"] == "other"
    assert body["csv"].count("\n") == 4  # header + 3 items
    text = body["text"]
    for host in ("shop[.]example[.]com", "blog[.]example[.]org", "files[.]example[.]net"):
        assert host in text
    assert "hxxp://shop[.]example[.]com/" in text
    assert "http://shop.example.com" not in text
    assert "https://board.tocsin.example/portal/" in text
    assert "AS64500" in text and "127.10.1.0/24" in text

    with app.db.session() as s:
        notice = s.scalars(select(Notice)).one()
        assert notice.state == "sent" and notice.ticket == ticket
        assert s.scalar(select(func.count()).select_from(NoticeItem)) == 3
        for incident in s.scalars(select(Incident)):
            assert incident.level == 1 and incident.first_notified == T0
            assert incident.next_recheck_at == T0 + app.config.escalation.recheck_after[0]
        token = s.scalars(select(PortalToken)).one()
        assert token.token_hash not in text  # only the hash is stored, the link differs
        kinds = set(s.scalars(select(Event.kind)))
        assert {"notice.queued", "notice.sent", "incident.notified"} <= kinds


def test_second_run_sends_nothing(app: App, seed: Seed, tmp_path: Path) -> None:
    _three_on_one_provider(seed)
    assert notify(app).send.sent == 1
    again = notify(app)
    assert again.send.sent == 0 and again.compose.notices == 0
    assert len(outbox_messages(tmp_path / "outbox")) == 1


def test_batch_cap_splits_a_recipient(db_url: str, seed: Seed, tmp_path: Path) -> None:
    hosting = seed.contact("abuse@big.example")
    for n in range(5):
        seed.incident(f"site{n}.example.com", ladder=[(hosting, 1)])
    app = make_app(db_url, tmp_path, notify={"batch_cap": 2})
    report = notify(app)
    assert report.send.sent == 3 and report.compose.items == 5
    messages = outbox_messages(tmp_path / "outbox")
    assert sorted(len(parts(m)["xarf"]) for m in messages) == [1, 2, 2]
    with app.db.session() as s:
        assert sorted(s.scalars(select(Notice.part))) == [1, 2, 3]
        assert set(s.scalars(select(Notice.parts))) == {3}


def test_suppression_allowlist_optout_and_rate(
    db_url: str, seed: Seed, tmp_path: Path, crawler: ScriptedCrawler
) -> None:
    a = seed.contact("abuse@a.example")
    b = seed.contact("abuse@b.example")
    c = seed.contact("abuse@c.example")
    seed.incident("www.gov.example", ladder=[(a, 1)])  # allowlisted domain
    seed.incident("phish.example.com", ladder=[(b, 1)], family="phishing")  # b opted out
    seed.incident("skim.example.com", ladder=[(b, 1)], family="card-skimmer")  # b: fine
    for n in range(3):
        seed.incident(f"x{n}.example.net", ladder=[(c, 1)])
    app = make_app(
        db_url,
        tmp_path,
        suppress={"allowlist_domains": ["gov.example"], "optout": ["abuse@b.example:phishing"]},
        notify={"rate_per_day": 1, "batch_cap": 2},
    )
    report = notify(app)
    assert report.compose.allowlisted == 1
    assert report.compose.suppressed == 1
    assert report.compose.rate_limited == 1  # c's second part waits for tomorrow
    sent = {str(m["To"]): len(parts(m)["xarf"]) for m in outbox_messages(tmp_path / "outbox")}
    assert sent == {"abuse@b.example": 1, "abuse@c.example": 2}
    tomorrow = notify(at(app, T0 + app.config.escalation.recheck_after[0]), checker=crawler)
    assert tomorrow.send.sent == 1 and tomorrow.compose.items == 1


def test_dry_run_changes_nothing(app: App, seed: Seed, tmp_path: Path) -> None:
    _three_on_one_provider(seed)
    report = notify(app, dry_run=True)
    assert len(report.would_send) == 1
    assert report.would_send[0]["items"] == 3
    assert report.would_send[0]["recipient"] == "abuse@hosting.example"
    with app.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 0
        assert s.scalar(select(func.count()).select_from(PortalToken)) == 0
        assert all(i.level == 0 for i in s.scalars(select(Incident)))
    assert not (tmp_path / "outbox").exists()  # not even the folder
    assert notify(app).send.sent == 1

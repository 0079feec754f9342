"""Bounces against the sandbox's real SMTP relay (5xx and 4xx replies, RFC 3464 DSNs it
writes to its maildir), on SQLite and PostgreSQL: a bounce moves the bounced role on to
the next level and nobody else; at most one message per recipient per run; and each
contact's bounce (hard or soft, when, the reason) in the export, the status JSON and the
board's incident page."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from notify_helpers import DAY, T0, SandboxMail, ScriptedCrawler, Seed, at, make_app, tocsin_cli
from sqlalchemy import select

from notifier.inbox import process, read_path
from notifier.service import notify, recheck
from store.models import Contact, Incident, Notice, NoticeItem, SiteContact
from tocsin.app import App
from tocsin.sandbox.web import free_port

HOSTING = "abuse@host-desk.example"
OWNER = "security@owner-site.example"
REGISTRAR = "abuse@registrar-desk.example"
CERT = "cert@csirt.example"


def ladder(seed: Seed, host: str = "shop.owner-site.example") -> tuple[int, dict[str, int]]:
    """An incident whose level 1 is the hosting desk and the owner, as enrich builds it."""
    ids = {
        "hosting": seed.contact(HOSTING),
        "owner": seed.contact(OWNER, role="owner"),
        "registrar": seed.contact(REGISTRAR, role="registrar"),
        "cert": seed.contact(CERT, role="cert"),
    }
    incident = seed.incident(
        host,
        ladder=[
            (ids["hosting"], 1),
            (ids["owner"], 1),
            (ids["registrar"], 2),
            (ids["cert"], 3),
        ],
    )
    with seed.db.session() as s:  # what enrich records beside the ladder: the export's contacts
        site_id = s.get(Incident, incident).site_id
        for role, contact_id in ids.items():
            s.add(
                SiteContact(
                    site_id=site_id,
                    contact_id=contact_id,
                    role=role,
                    source="test",
                    found_at=T0,
                )
            )
    return incident, ids


def received(smtp: SandboxMail) -> dict[str, int]:
    """How many messages each address has been handed so far."""
    counts: dict[str, int] = {}
    for message in smtp.messages:
        for rcpt in message.rcpt_tos:
            counts[rcpt.lower()] = counts.get(rcpt.lower(), 0) + 1
    return counts


def items_of(app: App, incident: int) -> set[tuple[str, int, str]]:
    """(recipient, level, kind) of every notice carrying this incident."""
    with app.db.session() as s:
        rows = s.execute(
            select(Notice.recipient, NoticeItem.level, Notice.kind)
            .join(NoticeItem, NoticeItem.notice_id == Notice.id)
            .where(NoticeItem.incident_id == incident)
        ).all()
    return {tuple(r) for r in rows}


@pytest.mark.parametrize("bouncing", ["hosting", "owner"])
def test_a_bounce_moves_the_bounced_role_on_and_not_the_reached_one(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path, bouncing: str
) -> None:
    incident, ids = ladder(seed)
    dead, alive = (HOSTING, OWNER) if bouncing == "hosting" else (OWNER, HOSTING)
    smtp.script(dead, "550 5.1.1 <mailbox> User unknown", repeat_last=True)
    app = make_app(db_url, tmp_path, **smtp.tables())
    crawler = ScriptedCrawler()

    report = notify(app, checker=crawler)
    assert report.send.bounced == 1 and report.send.escalated == 1
    # the reached contact: its first notice only; the registrar: its first, same run
    assert received(smtp) == {alive: 1, REGISTRAR: 1}
    assert items_of(app, incident) == {
        (dead, 1, "first"),
        (alive, 1, "first"),
        (REGISTRAR, 2, "first"),
    }
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert inc.level == 2 and inc.followup_level == 1
        gone = s.get(Contact, ids[bouncing])
        assert gone.bounced and gone.bounce_status == "hard" and gone.bounced_at == T0
        assert "550 5.1.1" in gone.bounce_reason
        reached = s.get(Contact, ids["owner" if bouncing == "hosting" else "hosting"])
        assert not reached.bounced and reached.bounce_status is None

    assert notify(app, checker=crawler).send.sent == 0  # and no follow-up in a later run

    # Grace over and still malicious: a real escalation, which every reached contact hears.
    later = at(app, T0 + 4 * DAY)
    assert recheck(later, checker=crawler).escalated == 1
    before = received(smtp)
    assert notify(later, checker=crawler).send.sent == 3
    after = received(smtp)
    # the bounced address was refused at RCPT, so the relay never handed it anything
    assert {k: n - before.get(k, 0) for k, n in after.items()} == {
        alive: 1,
        REGISTRAR: 1,
        CERT: 1,
    }
    assert {(r, level, kind) for r, level, kind in items_of(app, incident) if level == 3} == {
        (alive, 3, "followup"),
        (REGISTRAR, 3, "followup"),
        (CERT, 3, "first"),
    }
    with app.db.session() as s:
        assert s.get(Incident, incident).followup_level is None


def test_both_bounce_then_only_the_registrar(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    incident, _ = ladder(seed)
    smtp.script(HOSTING, "550 5.1.1 User unknown", repeat_last=True)
    smtp.script(OWNER, "554 5.7.1 Relay access denied", repeat_last=True)
    app = make_app(db_url, tmp_path, **smtp.tables())

    report = notify(app, checker=ScriptedCrawler())
    assert report.send.bounced == 2
    assert received(smtp) == {REGISTRAR: 1}
    with app.db.session() as s:
        assert s.get(Incident, incident).level == 2
        reasons = {
            c.email: (c.bounce_status, c.bounce_reason)
            for c in s.scalars(select(Contact).where(Contact.bounced))
        }
    assert reasons[HOSTING][0] == reasons[OWNER][0] == "hard"
    assert "5.1.1" in reasons[HOSTING][1] and "5.7.1" in reasons[OWNER][1]


def test_a_4xx_deferral_is_soft_and_moves_nobody(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    incident, ids = ladder(seed)
    smtp.script(HOSTING, "451 4.7.1 Greylisted, try again later")
    app = make_app(db_url, tmp_path, **smtp.tables())
    crawler = ScriptedCrawler()

    report = notify(app, checker=crawler)
    assert report.send.deferred == 1 and report.send.bounced == 0 and report.send.escalated == 0
    assert received(smtp) == {OWNER: 1}
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert inc.level == 1 and inc.followup_level is None
        desk = s.get(Contact, ids["hosting"])
        assert not desk.bounced and desk.bounce_status == "soft" and desk.bounced_at == T0
        assert "451 4.7.1" in desk.bounce_reason
        retry_at = s.scalars(select(Notice).where(Notice.state == "queued")).one().next_attempt_at

    retry = notify(at(app, retry_at + timedelta(seconds=1)), checker=crawler)
    assert retry.send.sent == 1
    assert received(smtp) == {OWNER: 1, HOSTING: 1}  # the same notice, once; nobody else


def test_a_dsn_in_the_inbox_later_moves_the_bounced_role_only(
    db_url: str, seed: Seed, smtp: SandboxMail, sandbox, tmp_path: Path
) -> None:
    """The relay accepted both; the hosting desk's DSN (failed 5.1.1) and the owner's
    (delayed 4.4.1) arrive in the inbox an hour later."""
    incident, ids = ladder(seed)
    smtp.script(HOSTING, "bounce")
    smtp.script(OWNER, "delay")
    app = make_app(db_url, tmp_path, **smtp.tables())
    crawler = ScriptedCrawler()

    assert notify(app, checker=crawler).send.sent == 2
    assert received(smtp) == {HOSTING: 1, OWNER: 1}

    hour = at(app, T0 + timedelta(hours=1))
    stats = process(hour, read_path(sandbox.smtp.maildir_path))
    assert stats.bounces == 1 and stats.delayed == 1 and stats.escalated == 1
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert inc.level == 2 and inc.followup_level == 1
        desk, owner = s.get(Contact, ids["hosting"]), s.get(Contact, ids["owner"])
        assert desk.bounced and desk.bounce_status == "hard"
        assert desk.bounced_at == T0 + timedelta(hours=1)
        assert desk.bounce_reason.startswith("DSN 5.1.1") and "User unknown" in desk.bounce_reason
        assert not owner.bounced and owner.bounce_status == "soft"
        assert owner.bounce_reason.startswith("DSN delayed 4.4.1")

    assert notify(hour, checker=crawler).send.sent == 1
    assert received(smtp) == {HOSTING: 1, OWNER: 1, REGISTRAR: 1}  # no follow-up to the owner
    assert (REGISTRAR, 2, "first") in items_of(app, incident)

    export_status_and_board(app, db_url, tmp_path, incident)


def test_at_most_one_message_per_recipient_per_run(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    """The registrar is due for a second incident after a bounce (compose path), and a
    mailbox that is two contacts (hosting desk of one site, registrar of another) is due
    twice (send path): each gets one message this run, the rest the next run."""
    incident, ids = ladder(seed)
    # An incident already at level 2 (its hosting desk bounced long ago): the registrar
    # is due for it in the first round.
    dead = seed.contact("abuse@dead-desk.example", bounced=True, bounce_status="hard")
    older = seed.incident(
        "blog.other.example", ladder=[(dead, 1), (ids["registrar"], 2), (ids["cert"], 3)]
    )
    # The registrar's mailbox is also the hosting desk of a third site.
    same_mailbox = seed.contact(REGISTRAR, role="hosting")
    third = seed.incident("forum.third.example", ladder=[(same_mailbox, 1)])
    smtp.script(HOSTING, "550 5.1.1 User unknown", repeat_last=True)
    app = make_app(db_url, tmp_path, **smtp.tables())
    crawler = ScriptedCrawler()

    first = notify(app, checker=crawler)
    assert first.send.bounced == 1 and first.send.escalated == 1
    assert first.send.held_over == 1
    assert received(smtp) == {OWNER: 1, REGISTRAR: 1}
    with app.db.session() as s:
        assert s.get(Incident, incident).level == 2
    # The next run: what was held over, and the registrar's notice for the bounced incident.
    second = notify(app, checker=crawler)
    assert second.send.held_over == 1 and second.send.sent == 1
    assert received(smtp) == {OWNER: 1, REGISTRAR: 2}
    third_run = notify(app, checker=crawler)
    assert third_run.send.sent == 1 and third_run.send.held_over == 0
    assert received(smtp) == {OWNER: 1, REGISTRAR: 3}
    assert notify(app, checker=crawler).send.sent == 0
    told = {i: items_of(app, i) for i in (incident, older, third)}
    assert (REGISTRAR, 2, "first") in told[incident] and (REGISTRAR, 2, "first") in told[older]
    assert told[third] == {(REGISTRAR, 1, "first")}
    assert not any(r == OWNER and level > 1 for r, level, _ in told[incident])


# -- what an operator sees -------------------------------------------------------------------


def export_status_and_board(app: App, db_url: str, tmp_path: Path, incident: int) -> None:
    # a board on plain http (loopback), so its session cookie is not Secure-only
    cli = tocsin_cli(tmp_path, db_url, board={"base_url": "http://127.0.0.1"})
    cli.now = T0 + timedelta(hours=2)
    hard_at = "2026-11-20T10:00:00Z"  # the export writes UTC with a Z

    out = cli("export", "--format", "json")
    assert out.returncode == 0, out.stderr
    [record] = json.loads(out.stdout)
    contacts = {c["email"]: c for c in record["contacts"]}
    assert contacts[HOSTING]["bounced"] is True
    assert contacts[HOSTING]["bounce_status"] == "hard"
    assert contacts[HOSTING]["bounced_at"] == hard_at
    assert contacts[HOSTING]["bounce_reason"].startswith("DSN 5.1.1")
    assert contacts[OWNER]["bounced"] is False and contacts[OWNER]["bounce_status"] == "soft"
    assert (
        contacts[REGISTRAR]["bounce_status"] is None and contacts[REGISTRAR]["bounced_at"] is None
    )

    out = cli("export", "--format", "csv")
    assert out.returncode == 0, out.stderr
    [row] = list(csv.DictReader(io.StringIO(out.stdout)))
    assert list(row)[-1] == "contact_bounces"
    bounces = {b["email"]: b for b in json.loads(row["contact_bounces"])}
    assert set(bounces) == {HOSTING, OWNER}
    assert bounces[HOSTING]["bounce_status"] == "hard" and bounces[HOSTING]["bounced_at"] == hard_at

    out = cli("status", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["notices"]["failed"] == 1  # the contract's aggregate is still there
    assert summary["bounces"]["hard"] == 1 and summary["bounces"]["soft"] == 1
    listed = {c["email"]: c for c in summary["bounces"]["contacts"]}
    assert listed[HOSTING]["bounce_status"] == "hard" and listed[HOSTING]["bounces"] == 1
    assert listed[HOSTING]["bounce_reason"] == contacts[HOSTING]["bounce_reason"]

    with app.db.session() as s:
        public_id = s.get(Incident, incident).public_id
    page = board_page(app, cli, f"/incidents/{public_id}")
    ladder_html = page.split('id="ladder"', 1)[1].split("</section>", 1)[0]
    row_of = {
        email: next(r for r in ladder_html.split("<tr>") if email in r)
        for email in (HOSTING, OWNER, REGISTRAR)
    }
    assert "bounced" in row_of[HOSTING] and "2026-11-20 10:00 UTC" in row_of[HOSTING]
    assert "DSN 5.1.1" in row_of[HOSTING]
    assert "deferred" in row_of[OWNER] and "DSN delayed 4.4.1" in row_of[OWNER]
    assert "bounced" not in row_of[REGISTRAR] and "deferred" not in row_of[REGISTRAR]


def board_page(app: App, cli, path: str) -> str:
    """``tocsin board`` in a subprocess, an analyst logged in, one page fetched."""
    from board.auth import add_user

    password = "a long enough password"
    with app.db.session() as s:  # what `tocsin user add` does, without another process
        add_user(s, "ana", "analyst", password, T0)
    port = free_port("127.0.0.1")
    proc = cli.start("board", "--host", "127.0.0.1", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the board did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as http:
            form = http.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)[1]
            answer = http.post(
                "/login", data={"csrf": csrf, "name": "ana", "password": password, "next": "/"}
            )
            assert answer.status_code == 303, answer.text
            page = http.get(path)
            assert page.status_code == 200, page.text
            return page.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_migration_0005_marks_earlier_bounces_hard_and_goes_back(db_url: str) -> None:
    """Down to 0003 and up again on a store with a contact bounced before 0005."""
    from alembic import command
    from sqlalchemy import MetaData, Table, inspect

    from store import migrate
    from store.db import Database

    db = Database(db_url)
    try:
        config = migrate._alembic_config(db)
        command.downgrade(config, "0003")
        with db.engine.begin() as conn:
            assert "bounce_status" not in {c["name"] for c in inspect(conn).get_columns("contacts")}
            assert "followup_level" not in {
                c["name"] for c in inspect(conn).get_columns("incidents")
            }
            contacts = Table("contacts", MetaData(), autoload_with=conn)
            common = dict(
                role="hosting",
                source="rdap:ip",
                languages=[],
                confidence=1.0,
                suppressed=False,
                optout_types=[],
                first_seen=T0.replace(tzinfo=None),  # a reflected column: naive UTC
                notices_sent=1,
                replies=0,
                fixes=0,
                fix_seconds_total=0.0,
            )
            conn.execute(
                contacts.insert(),
                [
                    dict(
                        common,
                        email="gone@old.example",
                        bounced=True,
                        bounced_at=T0.replace(tzinfo=None),
                        bounces=1,
                    ),
                    dict(
                        common, email="fine@old.example", bounced=False, bounced_at=None, bounces=0
                    ),
                ],
            )
        command.upgrade(config, "head")
        with db.session() as s:
            rows = {c.email: c for c in s.scalars(select(Contact))}
            assert rows["gone@old.example"].bounce_status == "hard"
            assert rows["gone@old.example"].bounced_at == T0
            assert rows["fine@old.example"].bounce_status is None
    finally:
        db.dispose()

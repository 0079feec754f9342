"""``tocsin inbox``: DSN bounces escalate at once; replies join the timeline; OOO ignored."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from notify_helpers import ImapServer, Seed, outbox_messages, tocsin_cli
from sqlalchemy import select

from notifier.inbox import is_auto_reply, parse_dsn
from notifier.service import notify
from store.db import Database
from store.models import Contact, Event, InboxMessage, Incident, Notice
from tocsin.app import App
from tocsin.sandbox.web import free_port


def dsn(original: bytes, recipient: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes them."""
    headers = original.split(b"\r\n\r\n", 1)[0].decode()
    unique = abs(hash((recipient, action, headers)))
    return (
        "From: MAILER-DAEMON@mx.example (Mail Delivery System)\r\n"
        "To: abuse-reports@tocsin.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn.{unique}@mx.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r\n'
        "\r\n--BOUND\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"I'm sorry to have to inform you that your message to {recipient} bounced.\r\n"
        "\r\n--BOUND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n"
        "\r\n--BOUND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        "\r\n--BOUND--\r\n"
    ).encode()


def message(subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Jane <jane@host.example>")
    msg["To"] = headers.pop("To", "abuse-reports@tocsin.example")
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("Message_ID", f"<{abs(hash(subject + body))}@host.example>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def _setup(app: App, seed: Seed, tmp_path: Path) -> tuple[int, dict[str, int], bytes]:
    c = {
        "hosting": seed.contact("abuse@host.example"),
        "registrar": seed.contact("abuse@registrar.example", role="registrar"),
    }
    incident = seed.incident("shop.example.com", ladder=[(c["hosting"], 1), (c["registrar"], 2)])
    notify(app)
    raw = next((tmp_path / "outbox" / "new").iterdir()).read_bytes()
    return incident, c, raw


def _maildir(path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(path, create=True)
    for m in messages:
        box.add(m)
    box.close()
    return path


def test_a_dsn_escalates_at_once_and_reading_twice_changes_nothing(
    app: App, db: Database, seed: Seed, tmp_path: Path
) -> None:
    incident, c, original = _setup(app, seed, tmp_path)
    inbox = _maildir(tmp_path / "inbox", dsn(original, "abuse@host.example"))
    cli = tocsin_cli(tmp_path, db.url)

    result = cli("inbox", str(inbox))
    assert result.returncode == 0, result.stderr
    with db.session() as s:
        contact = s.get(Contact, c["hosting"])
        assert contact.bounced and contact.bounces == 1
        inc = s.get(Incident, incident)
        assert inc.level == 2  # at once, without waiting for the grace
        assert s.scalars(select(Notice.state)).one() == "bounced"
        escalated = s.scalars(select(Event).where(Event.kind == "incident.escalated")).one()
        assert "bounced" in escalated.data["reason"]
        assert s.scalars(select(InboxMessage.kind)).one() == "dsn"

    assert cli("inbox", str(inbox)).returncode == 0  # the same mailbox again
    with db.session() as s:
        assert s.get(Contact, c["hosting"]).bounces == 1
        assert s.get(Incident, incident).level == 2

    assert notify(app).send.sent == 1
    assert [str(m["To"]) for m in outbox_messages(tmp_path / "outbox")] == [
        "abuse@host.example",
        "abuse@registrar.example",
    ]


def test_replies_join_the_timeline_and_auto_replies_are_ignored(
    app: App, seed: Seed, tmp_path: Path
) -> None:
    incident, c, original = _setup(app, seed, tmp_path)
    headers = BytesHeaderParser().parsebytes(original)
    ticket = headers["X-Tocsin-Ticket"]
    with app.db.session() as s:
        incident_ticket = s.get(Incident, incident).public_id
    delayed = dsn(original, "abuse@host.example", action="delayed", status="4.4.1")
    inbox = _maildir(
        tmp_path / "inbox",
        message(f"Re: [{ticket}] Compromised website", "Thanks, we suspended the site.\n> quoted"),
        message("Question", f"About {incident_ticket}: is it fixed?", From="other@x.example"),
        message(
            f"Re: [{ticket}]",
            "Threaded by In-Reply-To only.",
            In_Reply_To=headers["Message-ID"],
        ),
        message("Out of Office: back Monday", f"Re {ticket}", From="ooo@host.example"),
        message(f"Re: [{ticket}]", "I am away", Auto_Submitted="auto-replied"),
        message("Hello", "no ticket here"),
        delayed,
    )
    from notifier.inbox import process, read_path

    stats = process(app, read_path(inbox))
    assert (stats.replies, stats.auto, stats.unmatched, stats.delayed) == (3, 2, 1, 1)
    assert stats.bounces == 0
    with app.db.session() as s:
        replies = list(
            s.scalars(select(Event).where(Event.kind == "incident.reply").order_by(Event.id))
        )
        assert [e.incident_id for e in replies] == [incident] * 3
        assert replies[0].data["snippet"] == "Thanks, we suspended the site."
        assert replies[0].data["sender"] == "jane@host.example"
        assert s.get(Contact, c["hosting"]).replies >= 2
        assert not s.get(Contact, c["hosting"]).bounced


def test_mbox_is_read_too(app: App, seed: Seed, tmp_path: Path) -> None:
    _, _, original = _setup(app, seed, tmp_path)
    box = mailbox.mbox(tmp_path / "inbox.mbox", create=True)
    box.add(dsn(original, "abuse@host.example"))
    box.close()
    from notifier.inbox import process, read_path

    stats = process(app, read_path(tmp_path / "inbox.mbox"))
    assert stats.bounces == 1 and stats.escalated == 1


def test_an_imap_mailbox_is_read_and_each_message_flagged_seen(
    app: App, db: Database, seed: Seed, tmp_path: Path, imap: ImapServer
) -> None:
    """``tocsin inbox`` without a PATH reads notify.imap_*: the bounce escalates, the
    reply joins the timeline, both are flagged \\Seen, and a second run finds nothing."""
    incident, c, original = _setup(app, seed, tmp_path)
    ticket = BytesHeaderParser().parsebytes(original)["X-Tocsin-Ticket"]
    reply = message(f"Re: [{ticket}] Compromised website", "Fixed, thank you.")
    imap.deliver(dsn(original, "abuse@host.example"), reply)
    assert imap.unseen() == 2
    cli = tocsin_cli(tmp_path, db.url, notify=imap.config())

    result = cli("inbox")
    assert result.returncode == 0, result.stderr
    assert imap.unseen() == 0
    with db.session() as s:
        assert s.get(Contact, c["hosting"]).bounces == 1
        assert s.get(Incident, incident).level == 2
        kinds = sorted(s.scalars(select(InboxMessage.kind)))
        assert kinds == ["dsn", "reply"]

    imap.deliver(reply)  # the same reply again, unseen: recognised, nothing doubled
    assert cli("inbox").returncode == 0
    with db.session() as s:
        assert s.get(Contact, c["hosting"]).bounces == 1
        replies = s.scalars(select(Event).where(Event.kind == "incident.reply")).all()
        assert len(replies) == 1


def test_an_unreachable_or_refusing_imap_server_is_one_clear_error(
    db: Database, tmp_path: Path, imap: ImapServer
) -> None:
    wrong = {**imap.config(), "imap_password": "wrong"}
    refused = tocsin_cli(tmp_path, db.url, notify=wrong)("inbox")
    assert refused.returncode != 0
    assert refused.stderr == (
        "tocsin: IMAP 127.0.0.1: [AUTHENTICATIONFAILED] Invalid authentication credentials.\n"
    )
    down = {**imap.config(), "imap_port": free_port("127.0.0.1")}
    unreachable = tocsin_cli(tmp_path, db.url, notify=down)("inbox")
    assert unreachable.returncode != 0 and "cannot reach 127.0.0.1" in unreachable.stderr


def test_classifiers() -> None:
    import email

    bounce = email.message_from_bytes(dsn(b"Message-ID: <a@b>\r\n\r\n", "x@y.example"))
    parsed = parse_dsn(bounce)
    assert parsed is not None and parsed.failed[0][:2] == ("x@y.example", "5.1.1")
    assert parsed.original_id == "<a@b>"
    assert parse_dsn(email.message_from_bytes(message("hi", "there"))) is None
    assert is_auto_reply(email.message_from_bytes(message("自動応答: 不在です", "x")))
    assert is_auto_reply(email.message_from_bytes(message("x", "y", X_Autoreply="yes")))
    assert not is_auto_reply(email.message_from_bytes(message("Re: your report", "fixed")))


def test_a_maildir_is_read_in_delivery_order(tmp_path: Path) -> None:
    """Maildir names start with the delivery time, microseconds not zero-padded: the
    message of microsecond 99999 came before that of 100000, and a later second after both."""
    from notifier.inbox import read_path

    (tmp_path / "cur").mkdir()
    new = tmp_path / "new"
    new.mkdir()
    names = [
        "1765080000.M99999P7Q1.host",
        "1765080000.M100000P7Q2.host",
        "1765080001.M5P7Q3.host",
    ]
    for n, name in enumerate(reversed(names)):
        (new / name).write_bytes(message(f"m{len(names) - n}", "body"))
    subjects = [BytesHeaderParser().parsebytes(raw)["Subject"] for raw in read_path(tmp_path)]
    assert subjects == ["m1", "m2", "m3"]

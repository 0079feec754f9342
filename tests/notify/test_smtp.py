"""Sending through a real SMTP server: deferral and retry, bounces and escalation, DKIM."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from notify_helpers import T0, SandboxMail, Seed, at, make_app, parts, tocsin_cli
from sqlalchemy import select

from notifier.service import notify
from store import migrate
from store.db import Database
from store.models import Contact, Event, Incident, Notice


def test_421_then_success_is_delivered_once(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    hosting = seed.contact("abuse@busy.example")
    seed.incident("a.example.com", ladder=[(hosting, 1)])
    smtp.script("abuse@busy.example", "421 4.7.0 Try again later")
    app = make_app(db_url, tmp_path, **smtp.tables())

    first = notify(app)
    assert first.send.deferred == 1 and first.send.sent == 0
    assert smtp.to("abuse@busy.example") == []
    with app.db.session() as s:
        notice = s.scalars(select(Notice)).one()
        assert notice.state == "queued" and notice.next_attempt_at > T0
        retry_at = notice.next_attempt_at
        assert s.get(Incident, 1).level == 0  # not notified yet

    assert notify(app).send.sent == 0  # not due again yet (backoff)
    later = notify(at(app, retry_at + timedelta(seconds=1)))
    assert later.send.sent == 1
    [received] = smtp.to("abuse@busy.example")
    with app.db.session() as s:
        notice = s.scalars(select(Notice)).one()
        assert notice.state == "sent" and notice.attempts == 2
        assert received.message["Message-ID"] == notice.message_id
    assert notify(at(app, retry_at + timedelta(hours=1))).send.sent == 0
    assert len(smtp.to("abuse@busy.example")) == 1


def test_550_bounces_the_contact_and_notifies_the_next_level(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    hosting = seed.contact("abuse@gone.example")
    registrar = seed.contact("abuse@registrar.example", role="registrar")
    incident = seed.incident("b.example.com", ladder=[(hosting, 1), (registrar, 2)])
    smtp.script("abuse@gone.example", "550 5.1.1 User unknown", repeat_last=True)
    app = make_app(db_url, tmp_path, **smtp.tables())

    report = notify(app)
    assert report.send.bounced == 1 and report.send.escalated == 1
    assert report.send.sent == 1  # the registrar, in the same run
    assert smtp.to("abuse@gone.example") == []
    [to_registrar] = smtp.to("abuse@registrar.example")
    assert "b[.]example[.]com" in parts(to_registrar.message)["text"]
    with app.db.session() as s:
        contact = s.get(Contact, hosting)
        assert contact.bounced and contact.bounces == 1 and contact.bounced_at == T0
        inc = s.get(Incident, incident)
        assert inc.level == 2 and inc.first_notified == T0
        assert {n.state for n in s.scalars(select(Notice))} == {"bounced", "sent"}
        kinds = list(s.scalars(select(Event.kind).where(Event.incident_id == incident)))
        assert "incident.escalated" in kinds
    assert notify(app).send.sent == 0  # a bounced contact is never written to again


def test_smtp_mode_refuses_to_run_without_a_sender(smtp: SandboxMail, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"  # not a store path: one engine is enough
    migrate.upgrade(Database(url))
    cli = tocsin_cli(tmp_path, url, notify={"mode": "smtp"}, smtp=smtp.tables()["smtp"])
    result = cli("notify")
    assert result.returncode == 2
    assert "notify.from_addr" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert smtp.messages == []


def test_dkim_signature_verifies(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    hosting = seed.contact("abuse@signed.example")
    seed.incident("c.example.com", ladder=[(hosting, 1)])
    tables = smtp.tables()
    tables["notify"].update(
        dkim_selector="s1", dkim_domain="tocsin.example", dkim_key_file=str(tmp_path / "dkim.pem")
    )
    notify(make_app(db_url, tmp_path, **tables))
    [received] = smtp.to("abuse@signed.example")
    assert received.data.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"s1._domainkey.tocsin.example." else b""

    assert dkim.verify(received.data, dnsfunc=dns)
    assert not dkim.verify(received.data.replace(b"c[.]example", b"x[.]example"), dnsfunc=dns)


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_starttls_and_implicit_tls_with_auth(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path, mode: str
) -> None:
    hosting = seed.contact("abuse@tls.example")
    seed.incident("d.example.com", ladder=[(hosting, 1)])
    assert notify(make_app(db_url, tmp_path, **smtp.tables(mode))).send.sent == 1
    [received] = smtp.to("abuse@tls.example")
    assert received.tls and received.auth_user == "tocsin" and received.listener == mode


def test_wrong_password_is_said_and_keeps_the_notice(
    db_url: str, seed: Seed, smtp: SandboxMail, tmp_path: Path
) -> None:
    hosting = seed.contact("abuse@tls.example")
    seed.incident("e.example.com", ladder=[(hosting, 1)])
    tables = smtp.tables("starttls")
    tables["smtp"]["password"] = "wrong"
    report = notify(make_app(db_url, tmp_path, **tables))
    # Not one recipient's deferral: the relay refused us (issue 12), exit 1, nothing counted.
    assert report.send.deferred == 0 and report.send.sent == 0 and report.failed
    assert "refused the log-in: 535" in report.send.relay_error
    with make_app(db_url, tmp_path).db.session() as s:
        assert [(n.state, n.attempts) for n in s.scalars(select(Notice))] == [("queued", 0)]
    assert smtp.to("abuse@tls.example") == []

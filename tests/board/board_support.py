"""Helpers of the board tests: the board as a real process, and a seeded store.

The seeded store is written the way the pipeline writes it, through the incident
state machine (``store.incidents``), plus notice and inbox rows as the notifier
and ``tocsin inbox`` leave them. It carries hostile text where an attacker or a
third party controls it: page titles, URLs, campaign names, AS names, replies.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx

from notifier import tokens
from store import evidence as evidence_store
from store.db import Database
from store.incidents import mark_notified, record_malicious, resolve, set_tlp
from store.models import (
    Campaign,
    Check,
    Contact,
    Evidence,
    InboxMessage,
    Incident,
    Notice,
    NoticeItem,
    PortalToken,
    Recipient,
    Site,
    Url,
)
from tocsin.config import load
from tocsin.sandbox.web import free_port

NOW = datetime.now(UTC).replace(microsecond=0)
HOSTILE_TITLE = "</title><script>alert('title')</script>\"><img src=x onerror=alert('img')>"
HOSTILE_URL = 'http://xss.example/"><img src=x onerror=alert(1)>?next=javascript:alert(2)'
HOSTILE_CAMPAIGN = "<svg onload=alert('campaign')>wave"
HOSTILE_AS = '=HYPERLINK("http://evil.example","click")'


class BoardProcess:
    """``tocsin board`` on a free loopback port, stopped with SIGINT as a user would."""

    def __init__(self, cli: Any, *extra: str) -> None:
        self.cli = cli
        self.port = free_port("127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BoardProcess:
        command = [sys.executable, "-m", "tocsin", "--config", str(self.cli.config)]
        command += ["board", "--host", "127.0.0.1", "--port", str(self.port), *self.extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        self.log = open(self.cli.cwd / f"board-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            command, cwd=self.cli.cwd, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the board exited: {self.output()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the board did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.cli.cwd / f"board-{self.port}.log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)

    def url(self, path: str) -> str:
        return self.base + path


def png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG (a flat colour), for a screenshot blob."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class SeededStore:
    tickets: dict[str, str] = field(default_factory=dict)  # name -> incident ticket
    campaigns: dict[str, int] = field(default_factory=dict)
    portal: dict[str, str] = field(default_factory=dict)  # contact email -> portal token
    screenshot: str = ""
    notice_tickets: dict[str, str] = field(default_factory=dict)


def _message(to: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "tocsin <notices@tocsin.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return bytes(msg)


def seed_store(db: Database, folder: Path, secret: str) -> SeededStore:
    """Three campaigns on two networks; incidents open, notified, escalated, resolved and
    re-compromised; notices sent and bounced, a reply, portal tokens, a screenshot."""
    out = SeededStore()
    config = load(None, {"TOCSIN_BOARD_SECRET": secret})
    store = evidence_store.EvidenceStore(folder / "evidence", 10 * 1024**2)
    shot = store.put(png())
    out.screenshot = shot.sha256
    t0 = NOW - timedelta(days=10)
    with db.session() as s:
        hosting = Contact(
            email="abuse@example-hosting.net", role="hosting", source="rdap:ip", first_seen=t0
        )
        other = Contact(
            email="abuse@other-net.example", role="hosting", source="rdap:ip", first_seen=t0
        )
        owner = Contact(
            email="webmaster@shop-a.example", role="owner", source="security.txt", first_seen=t0
        )
        s.add_all([hosting, other, owner])
        s.flush()

        def incident(
            name: str,
            host: str,
            campaign: str,
            *,
            asn: int,
            as_name: str,
            url: str | None = None,
            title: str | None = None,
            family: str = "card-skimmer",
            contacts: tuple[Contact, ...] = (hosting,),
            at: datetime = t0,
        ) -> Incident:
            site = Site(
                host=host,
                registered_domain=host.split(".", 1)[-1],
                ips=[f"192.0.2.{len(out.tickets) + 10}"],
                asn=asn,
                as_name=as_name,
                prefix="192.0.2.0/24",
                country="NL",
                registrar="Example Registrar",
                first_seen=at,
                enrich_state="done",
            )
            camp = s.query(Campaign).filter_by(name=campaign).one_or_none()
            if camp is None:
                camp = Campaign(name=campaign, family=family, first_seen=at, last_seen=at, iocs={})
                s.add(camp)
            s.add(site)
            s.flush()
            text = url or f"http://{host}/checkout/"
            row = Url(
                url=text,
                url_hash=sha256(text.encode()).hexdigest(),
                host=host,
                site_id=site.id,
                verdict="malicious",
                family=family,
                rules=[f"tocsin_{family.replace('-', '_')}"],
                first_seen=at,
                last_seen=at,
            )
            s.add(row)
            s.flush()
            check = Check(
                url_id=row.id,
                kind="confirm",
                started_at=at,
                finished_at=at,
                route="browser",
                verdict="malicious",
                family=family,
                rules=row.rules,
                iocs={"domains": ["skim-cdn.example"], "urls": [f"{text}#javascript:alert(9)"]},
                evidence_lines=[f"exfiltration to hxxps://skim-cdn[.]example from {text}"],
                redirect_chain=[{"url": text, "status": 200}],
                final_url=text,
                meta={"browser": {"title": title or f"{host} shop"}},
            )
            s.add(check)
            s.flush()
            s.add(
                Evidence(
                    check_id=check.id,
                    kind="screenshot",
                    sha256=shot.sha256,
                    size=shot.size,
                    media_type="image/png",
                    note="the page as rendered",
                    created_at=at,
                )
            )
            found = record_malicious(s, site=site, campaign=camp, url=row, check=check, now=at)
            s.flush()
            for level, contact in enumerate(contacts, start=1):
                s.add(
                    Recipient(
                        incident_id=found.id,
                        contact_id=contact.id,
                        level=1 if contact.role != "registrar" else level,
                        role=contact.role,
                        reason="seeded",
                        language="en",
                        created_at=at,
                    )
                )
            out.tickets[name] = found.public_id
            out.campaigns[campaign] = camp.id
            return found

        def notice(
            contact: Contact, incidents: list[Incident], at: datetime, state: str = "sent"
        ) -> Notice:
            ticket = f"TCS-N{len(out.notice_tickets):03d}-SEED"
            body = "We found malicious content on: " + ", ".join(i.public_id for i in incidents)
            row = Notice(
                message_id=f"<{ticket}@tocsin.example>",
                ticket=ticket,
                contact_id=contact.id,
                recipient=contact.email,
                role=contact.role,
                kind="first",
                level=1,
                language="en",
                subject=f"[{ticket}] Compromised website",
                message=_message(contact.email, f"[{ticket}] Compromised website", body),
                state=state,
                attempts=1,
                created_at=at,
                sending_at=at,
                sent_at=at,
            )
            s.add(row)
            s.flush()
            for inc in incidents:
                s.add(
                    NoticeItem(notice_id=row.id, incident_id=inc.id, contact_id=contact.id, level=1)
                )
                mark_notified(s, inc, 1, at, recheck_after=timedelta(days=1))
            out.notice_tickets[f"{contact.email}#{len(out.notice_tickets)}"] = ticket
            return row

        a1 = incident("a1", "shop-a.example", "skimmer-wave", asn=64500, as_name="EXAMPLE-NET")
        a2 = incident("a2", "shop-b.example", "skimmer-wave", asn=64500, as_name="EXAMPLE-NET")
        a3 = incident(
            "a3", "shop-c.example", "skimmer-wave", asn=64501, as_name=HOSTILE_AS, contacts=(other,)
        )
        g1 = incident(
            "g1", "blog-g.example", "green-wave", asn=64500, as_name="EXAMPLE-NET",
            family="injected-script",
        )  # fmt: skip
        x1 = incident(
            "x1",
            "xss.example",
            HOSTILE_CAMPAIGN,
            asn=64500,
            as_name="EXAMPLE-NET",
            url=HOSTILE_URL,
            title=HOSTILE_TITLE,
            family="injected-script",
        )
        n1 = notice(hosting, [a1, a2, g1, x1], t0 + timedelta(hours=1))
        bounced = notice(other, [a3], t0 + timedelta(hours=1), state="bounced")
        notice(owner, [a1], t0 + timedelta(hours=2))
        s.add(
            InboxMessage(
                key=sha256(b"reply-1").hexdigest(),
                message_id="<reply-1@example-hosting.net>",
                kind="reply",
                notice_id=n1.id,
                sender="abuse@example-hosting.net",
                subject=f"Re: {n1.subject} <script>alert('reply')</script>",
                received_at=t0 + timedelta(days=1),
                data={"tickets": [n1.ticket]},
            )
        )
        s.add(
            InboxMessage(
                key=sha256(b"dsn-1").hexdigest(),
                message_id="<dsn-1@mx.other-net.example>",
                kind="dsn",
                notice_id=bounced.id,
                sender="mailer-daemon@mx.other-net.example",
                subject="Undelivered Mail Returned to Sender",
                received_at=t0 + timedelta(hours=2),
                data={"failed": [["abuse@other-net.example", "5.1.1", "user unknown"]]},
            )
        )
        resolve(s, a2, t0 + timedelta(days=2), reason="clean at re-check", check_id=None)
        resolve(s, g1, t0 + timedelta(days=4), reason="clean at re-check", check_id=None)
        a3.level, a3.level_reached_at = 2, t0 + timedelta(days=4)
        set_tlp(s, s.get(Campaign, out.campaigns["green-wave"]), "green", t0, actor="seed")
        for contact in (hosting, other):
            token = tokens.new_token(config)
            s.add(
                PortalToken(
                    contact_id=contact.id,
                    notice_id=n1.id if contact is hosting else bounced.id,
                    token_hash=tokens.token_hash(token),
                    created_at=t0,
                    expires_at=NOW + timedelta(days=90),
                )
            )
            out.portal[contact.email] = token
        expired = tokens.new_token(config)
        s.add(
            PortalToken(
                contact_id=hosting.id,
                token_hash=tokens.token_hash(expired),
                created_at=t0,
                expires_at=NOW - timedelta(days=1),
            )
        )
        out.portal["expired"] = expired
        revoked = tokens.new_token(config)
        s.add(
            PortalToken(
                contact_id=hosting.id,
                token_hash=tokens.token_hash(revoked),
                created_at=t0,
                expires_at=NOW + timedelta(days=1),
                revoked=True,
            )
        )
        out.portal["revoked"] = revoked
    db.dispose()
    return out

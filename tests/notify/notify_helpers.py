"""Helpers of the notifier tests: a seeded store, a real SMTP server, a stand-in crawler.

The store is seeded by inserting Site / Contact / Incident / Recipient rows
directly (what the crawl and enrich stages would have written), so these
tests exercise the notifier alone, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import mailbox
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from hashlib import sha256
from pathlib import Path
from typing import Any

from sqlalchemy import select

from store.db import Database
from store.incidents import record_malicious
from store.models import Campaign, Check, Contact, Incident, Recipient, Site, Url
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import Config
from tocsin.sandbox.core import to_toml
from tocsin.sandbox.web import free_port

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


# -- the store ---------------------------------------------------------------------------


@dataclass
class Seed:
    """Writes what crawl and enrich would have: sites, checks, incidents, ladders."""

    db: Database
    now: datetime = T0

    def contact(
        self, email: str, role: str = "hosting", language: str | None = None, **extra: Any
    ) -> int:
        with self.db.session() as s:
            found = s.scalars(
                select(Contact).where(Contact.email == email, Contact.role == role)
            ).one_or_none()
            if found:
                return found.id
            c = Contact(
                email=email,
                role=role,
                source="test",
                language=language,
                first_seen=self.now,
                **extra,
            )
            s.add(c)
            s.flush()
            return c.id

    def incident(
        self,
        host: str,
        *,
        ladder: list[tuple[int, int] | tuple[int, int, dict[str, Any]]],
        family: str = "injected-script",
        ip: str = "127.10.1.5",
        asn: int = 64500,
        as_name: str = "EXAMPLE-HOSTING",
        country: str = "NL",
        urls: list[str] | None = None,
        evidence: list[str] | None = None,
        campaign: str = "test-campaign",
        at: datetime | None = None,
        title: str | None = None,
    ) -> int:
        """An incident on ``host``; ``ladder`` is [(contact_id, level[, recipient fields])]."""
        at = at or self.now
        urls = urls or [f"http://{host}/"]
        with self.db.session() as s:
            site = s.scalars(select(Site).where(Site.host == host)).one_or_none()
            if site is None:
                site = Site(
                    host=host,
                    registered_domain=host.split(".", 1)[-1] if host.count(".") > 1 else host,
                    ips=[ip],
                    asn=asn,
                    as_name=as_name,
                    prefix=ip.rsplit(".", 1)[0] + ".0/24",
                    country=country,
                    registrar="Example Registrar",
                    first_seen=at,
                    enrich_state="done",
                    meta={"title": title} if title else {},
                )
                s.add(site)
            camp = s.scalars(select(Campaign).where(Campaign.name == campaign)).one_or_none()
            if camp is None:
                camp = Campaign(name=campaign, family=family, first_seen=at, last_seen=at, iocs={})
                s.add(camp)
            s.flush()
            incident = None
            for raw in urls:
                url = Url(
                    url=raw,
                    url_hash=sha256(raw.encode()).hexdigest(),
                    host=host,
                    site_id=site.id,
                    verdict="malicious",
                    family=family,
                    first_seen=at,
                    last_seen=at,
                )
                s.add(url)
                s.flush()
                check = Check(
                    url_id=url.id,
                    kind="confirm",
                    started_at=at,
                    finished_at=at,
                    route="browser",
                    verdict="malicious",
                    family=family,
                    confidence=0.9,
                    rules=[f"rule-{family}"],
                    iocs={"domains": ["evil.example"]},
                    evidence_lines=evidence
                    or [f"script hxxps://evil[.]example/x.js injected into {raw}"],
                    redirect_chain=[],
                    meta={},
                )
                s.add(check)
                s.flush()
                incident = record_malicious(
                    s, site=site, campaign=camp, url=url, check=check, now=at
                )
                s.flush()
            assert incident is not None
            for rung in ladder:
                contact_id, level = rung[0], rung[1]
                fields = rung[2] if len(rung) > 2 else {}
                contact = s.get(Contact, contact_id)
                s.add(
                    Recipient(
                        incident_id=incident.id,
                        contact_id=contact_id,
                        level=level,
                        role=fields.get("role", contact.role),
                        reason=fields.get("reason", "test ladder"),
                        language=fields.get("language", contact.language or "en"),
                        note=fields.get("note"),
                        cdn=fields.get("cdn"),
                        created_at=at,
                    )
                )
            return incident.id

    def get(self, incident_id: int) -> Incident:
        with self.db.session() as s:
            return s.get(Incident, incident_id)


def make_app(db_url: str, tmp_path: Path, now: datetime = T0, **tables: dict[str, Any]) -> App:
    """An in-process App on this store, with the outbox in the test's folder."""
    data: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        "notify": {
            "outbox_dir": str(tmp_path / "outbox"),
            "journal": str(tmp_path / "journal.log"),
            "from_addr": "abuse-reports@tocsin.example",
        },
        "board": {"base_url": "https://board.tocsin.example", "secret": "s3cret"},
    }
    for table, keys in tables.items():
        data.setdefault(table, {}).update(keys)
    return App(preset=Config.model_validate(data), clock=Clock(frozen=now))


def at(app: App, when: datetime) -> App:
    """The same app (config, database) with the clock moved."""
    moved = App(preset=app.config, clock=Clock(frozen=when))
    moved.__dict__["db"] = app.db
    return moved


def outbox_messages(path: Path) -> list[EmailMessage]:
    """Every message in a maildir, parsed."""
    box = mailbox.Maildir(path, factory=None, create=False)
    messages = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
    return sorted(messages, key=lambda m: str(m["To"]))


def parts(message: EmailMessage) -> dict[str, Any]:
    """The text body, the HTML body, the CSV and the X-ARF reports of a notice."""
    import json

    out: dict[str, Any] = {"text": None, "html": None, "csv": None, "xarf": []}
    for part in message.walk():
        name = part.get_filename()
        ctype = part.get_content_type()
        if name and name.endswith(".json"):
            out["xarf"].append(json.loads(part.get_content()))
        elif name and name.endswith(".csv"):
            content = part.get_content()
            out["csv"] = content.decode() if isinstance(content, bytes) else content
        elif ctype == "text/plain" and out["text"] is None:
            out["text"] = part.get_content()
        elif ctype == "text/html":
            out["html"] = part.get_content()
    return out


# -- the sandbox's SMTP relay -------------------------------------------------------------


@dataclass
class SandboxMail:
    """The sandbox relay (127.25.0.x): what it received, and its scripted replies."""

    sandbox: Any

    @property
    def messages(self) -> list[Any]:
        return self.sandbox.smtp.messages

    def to(self, address: str) -> list[Any]:
        return self.sandbox.smtp.to(address)

    def script(self, recipient: str, *replies: str, repeat_last: bool = False) -> None:
        self.sandbox.smtp.script(recipient, *replies, repeat_last=repeat_last)

    def hold_data(self, concurrent: int) -> None:
        self.sandbox.smtp.hold_data(concurrent)

    def tables(self, mode: str = "plain") -> dict[str, dict[str, Any]]:
        smtp = dict(self.sandbox.smtp.config(mode))
        smtp.update(timeout="10s", ca_file=str(self.sandbox.certs.ca_path))
        return {
            "notify": {"mode": "smtp", "from_addr": "abuse-reports@tocsin.example"},
            "smtp": smtp,
        }


# -- a stand-in for the crawl stage's check_urls ------------------------------------------


@dataclass
class ScriptedCrawler:
    """Visits URLs the way ``crawler.runner.check_urls`` does for the notifier: it stores
    one check per URL (and refreshes the incident on a malicious one, as the crawl
    pipeline does). The verdict per host is set by the test: the site's state."""

    states: dict[str, str] = field(default_factory=dict)  # host -> malicious|clean|offline
    visits: list[list[int]] = field(default_factory=list)

    def __call__(self, app: App, url_ids: list[int]) -> None:
        self.visits.append(list(url_ids))
        now = app.clock.now()
        with app.db.session() as s:
            for url in s.scalars(select(Url).where(Url.id.in_(url_ids))):
                verdict = self.states.get(url.host, "malicious")
                check = Check(
                    url_id=url.id,
                    kind="recheck",
                    started_at=now,
                    finished_at=now,
                    route="browser" if verdict != "offline" else "offline",
                    verdict=verdict,
                    family=url.family if verdict == "malicious" else None,
                    rules=[],
                    iocs={},
                    evidence_lines=["still there"] if verdict == "malicious" else [],
                    redirect_chain=[],
                    meta={},
                )
                s.add(check)
                s.flush()
                url.verdict = verdict
                if verdict == "malicious":
                    site = s.get(Site, url.site_id)
                    incident = s.scalars(
                        select(Incident).where(Incident.site_id == site.id)
                    ).first()
                    camp = s.get(Campaign, incident.campaign_id)
                    record_malicious(s, site=site, campaign=camp, url=url, check=check, now=now)


@dataclass
class Tocsin:
    """``python -m tocsin --config ...`` in a subprocess, as an operator runs it."""

    cwd: Path
    config: Path
    now: datetime | None = T0  # --now, so evidence is fresh and schedules are ours

    def command(self, *args: str) -> list[str]:
        clock = ["--now", self.now.isoformat()] if self.now else []
        return [sys.executable, "-m", "tocsin", "--config", str(self.config), *clock, *args]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env["COLUMNS"] = "200"
        env.update(extra or {})
        return env

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.cwd,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def tocsin_cli(tmp_path: Path, db_url: str, **tables: dict[str, Any]) -> Tocsin:
    data: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        "notify": {
            "outbox_dir": str(tmp_path / "outbox"),
            "journal": str(tmp_path / "journal.log"),
        },
        "board": {"base_url": "https://board.tocsin.example", "secret": "s3cret"},
    }
    for table, keys in tables.items():
        data.setdefault(table, {}).update(keys)
    path = tmp_path / "tocsin.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return Tocsin(tmp_path, path)


DAY = timedelta(days=1)


class ImapServer:
    """A real IMAP server (pymap, in-memory) on 127.0.0.1, in a child process.

    ``tocsin inbox`` reads it as it would a provider's mailbox; tests put mail in
    with APPEND and look at the flags afterwards, through a client of their own.
    """

    USER, PASSWORD = "abuse-reports", "imap-s3cret"

    def __init__(self) -> None:
        self.port = free_port("127.0.0.1")
        pymap = Path(sys.executable).with_name("pymap")
        self.proc = subprocess.Popen(
            [
                str(pymap),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "dict",
                "--demo-user",
                self.USER,
                "--demo-password",
                self.PASSWORD,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a pipe nobody reads would block a chatty server
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client().logout()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("pymap did not start") from None
                time.sleep(0.1)

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(self.USER, self.PASSWORD)
        return conn

    def config(self) -> dict[str, Any]:
        """The ``notify`` keys that point ``tocsin inbox`` here."""
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.port,
            "imap_ssl": False,
            "imap_username": self.USER,
            "imap_password": self.PASSWORD,
        }

    def deliver(self, *messages: bytes) -> None:
        with self.client() as conn:  # logs out on leaving
            for raw in messages:
                conn.append("INBOX", None, None, raw)

    def unseen(self) -> int:
        with self.client() as conn:
            conn.select("INBOX")
            _, found = conn.search(None, "UNSEEN")
            return len(found[0].split())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

"""An evidence package of a 1,000-incident campaign: time and peak memory.

    .venv/bin/python bench/package.py                    # 1,000 incidents, SQLite
    .venv/bin/python bench/package.py --incidents 250    # to see that memory does not grow
    .venv/bin/python bench/package.py --pg               # PostgreSQL (schema tocsin_package_bench)

Seeds a store in a temporary folder: one campaign of N incidents, each a site with one
URL, a triage and a confirm check, the confirm check's evidence (a 120 KiB screenshot,
a 60 KiB DOM, a request log of 40 requests, all distinct per incident: incompressible
bytes in the screenshot), a payload zip shared by the campaign, a notice per 25 incidents
(batched, as the notifier sends them) plus a follow-up per incident, a reply per notice,
and eight events per incident. Then it runs ``tocsin package --campaign bench`` as a
subprocess, as an operator would, and prints its wall time, the zip's size and the peak
RSS of that process (``ru_maxrss`` of the child), with its CPU time and the load average
(the machine is shared: CPU time is the figure that does not depend on the neighbours).
The goal (issue 15): <= 30 s for 1,000 incidents, and memory that does not grow with the
campaign (files are streamed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from store import migrate
from store.db import Database
from store.evidence import EvidenceStore, zip_payload
from store.models import (
    Campaign,
    Check,
    Contact,
    Event,
    Evidence,
    InboxMessage,
    Incident,
    IncidentUrl,
    Notice,
    NoticeItem,
    Site,
    Url,
)
from tocsin.sandbox.core import to_toml

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def request_log(url: str, n: int) -> bytes:
    requests = [
        {
            "url": f"https://cdn{i % 7}.example/asset-{n}-{i}.js?v={i}",
            "method": "GET",
            "type": "script",
            "phase": "load",
            "at": i * 37,
            "status": 200,
            "mime": "application/javascript",
        }
        for i in range(40)
    ]
    log = {"url": url, "kind": "confirm", "browser": {"title": f"Shop {n}", "requests": requests}}
    return json.dumps(log).encode()


def message(ticket: str, to: str, hosts: list[str]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "tocsin <notices@tocsin.example>"
    msg["To"] = to
    msg["Subject"] = f"[{ticket}] Compromised websites on your network"
    msg.set_content("We found malicious content on:\n" + "\n".join(hosts) + "\n" * 20)
    return bytes(msg)


def seed(db: Database, folder: Path, count: int) -> None:
    store = EvidenceStore(folder / "evidence", 32 * 1024**2)
    payload = store.put(zip_payload(b"MZ TOCSIN-SANDBOX-SAMPLE inert" * 400, "loader.exe"))
    content = hashlib.sha256(b"MZ TOCSIN-SANDBOX-SAMPLE inert" * 400).hexdigest()
    with db.session() as s:
        desk = Contact(
            email="abuse@hoster.example", role="hosting", source="rdap:ip", first_seen=T0
        )
        campaign = Campaign(name="bench", family="card-skimmer", first_seen=T0, last_seen=T0)
        s.add_all([desk, campaign])
        s.flush()
        incidents: list[Incident] = []
        for n in range(count):
            at = T0 + timedelta(minutes=n)
            host = f"shop{n}.example"
            site = Site(host=host, ips=[f"192.0.2.{n % 250}"], asn=64500, first_seen=at)
            s.add(site)
            s.flush()
            link = f"http://{host}/checkout/"
            url = Url(
                url=link,
                url_hash=hashlib.sha256(link.encode()).hexdigest(),
                host=host,
                site_id=site.id,
                verdict="malicious",
                first_seen=at,
                last_seen=at,
            )
            s.add(url)
            s.flush()
            checks = []
            for kind in ("triage", "confirm"):
                check = Check(
                    url_id=url.id,
                    kind=kind,
                    started_at=at,
                    finished_at=at,
                    verdict="malicious",
                    family="card-skimmer",
                    rules=["yara.skimmers.exfil_fetch"],
                    iocs={"domains": ["skim.example"]},
                    evidence_lines=["exfiltration to hxxps://skim[.]example"],
                    redirect_chain=[{"url": link, "status": 200}],
                    final_url=link,
                    meta={"browser": {"title": f"Shop {n}"}},
                )
                s.add(check)
                checks.append(check)
            s.flush()
            blobs = [
                ("screenshot", b"\x89PNG\r\n\x1a\n" + os.urandom(120 * 1024), "image/png"),
                ("dom", (f"<html><!-- {n} -->" + "<p>shop</p>" * 5000).encode(), "text/html"),
                ("requests", request_log(link, n), "application/json"),
            ]
            for kind, data, media in blobs:
                put = store.put(data)
                s.add(
                    Evidence(
                        check_id=checks[1].id,
                        kind=kind,
                        sha256=put.sha256,
                        size=put.size,
                        media_type=media,
                        created_at=at,
                    )
                )
            s.add(
                Evidence(
                    check_id=checks[1].id,
                    kind="payload_zip",
                    sha256=payload.sha256,
                    size=payload.size,
                    media_type="application/zip",
                    created_at=at,
                    content_sha256=content,
                )
            )
            incident = Incident(
                public_id=f"TCS-B{n:04d}-BNCH",
                site_id=site.id,
                campaign_id=campaign.id,
                family="card-skimmer",
                state="open",
                level=1,
                first_seen=at,
                last_confirmed=at,
                last_check_id=checks[1].id,
            )
            s.add(incident)
            s.flush()
            s.add(IncidentUrl(incident_id=incident.id, url_id=url.id, added_at=at))
            for k, kind in enumerate(
                (
                    "incident.opened",
                    "enrich.done",
                    "notice.queued",
                    "notice.sent",
                    "recheck.confirmed",
                    "notice.queued",
                    "notice.sent",
                    "incident.escalated",
                )
            ):
                s.add(
                    Event(
                        at=at + timedelta(hours=k),
                        kind=kind,
                        incident_id=incident.id,
                        data={"step": k},
                    )
                )
            incidents.append(incident)
        s.flush()
        batches = [incidents[i : i + 25] for i in range(0, count, 25)]
        for b, batch in enumerate(batches):
            notice = sent_notice(s, desk, f"TCS-N{b:04d}-BNCH", "first", batch, episode=0)
            s.add(
                InboxMessage(
                    key=hashlib.sha256(notice.message_id.encode()).hexdigest(),
                    kind="reply",
                    notice_id=notice.id,
                    sender=desk.email,
                    subject=f"Re: {notice.subject}",
                    received_at=T0 + timedelta(days=1),
                    data={},
                )
            )
        for incident in incidents:
            sent_notice(s, desk, f"TCS-F{incident.id:05d}-BNCH", "followup", [incident], episode=1)


def sent_notice(
    s: Session, desk: Contact, tick: str, kind: str, batch: list[Incident], episode: int
) -> Notice:
    """A notice as the notifier leaves it once the relay took it, for ``batch``."""
    notice = Notice(
        message_id=f"<{tick}@tocsin.example>",
        ticket=tick,
        contact_id=desk.id,
        recipient=desk.email,
        role="hosting",
        kind=kind,
        level=1,
        language="en",
        subject=f"[{tick}]",
        message=message(tick, desk.email, [i.public_id for i in batch]),
        state="sent",
        attempts=1,
        created_at=T0,
        sent_at=T0,
    )
    s.add(notice)
    s.flush()
    for incident in batch:
        s.add(
            NoticeItem(
                notice_id=notice.id,
                incident_id=incident.id,
                contact_id=desk.id,
                level=1,
                episode=episode,
            )
        )
    return notice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tocsin-package-bench-"))
    schema = "tocsin_package_bench"
    try:
        if args.pg:
            admin = create_engine(PG)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{PG}?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{folder / 'tocsin.db'}"
        db = Database(url)
        migrate.upgrade(db)
        started = time.monotonic()
        seed(db, folder, args.incidents)
        db.dispose()
        print(f"seeded {args.incidents} incidents in {time.monotonic() - started:.1f} s")
        config = folder / "tocsin.toml"
        config.write_text(
            to_toml(
                {
                    "database": {"url": url},
                    "evidence": {"dir": str(folder / "evidence")},
                    "package": {"operator": "bench"},
                }
            ),
            encoding="utf-8",
        )
        target = folder / "bench.zip"

        def tocsin(*words: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "tocsin", "--config", str(config), *words]
            return subprocess.run(command, capture_output=True, text=True, check=False, cwd=folder)

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        started = time.monotonic()
        done = tocsin("package", "--campaign", "bench", "-o", str(target))
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = max(after.ru_maxrss, before.ru_maxrss)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0:
            sys.exit(f"tocsin package failed: {done.stderr}")
        blobs = sum(p.stat().st_size for p in (folder / "evidence").rglob("*") if p.is_file())
        print(done.stdout.strip())
        print(
            f"package of {args.incidents} incidents ({'PostgreSQL' if args.pg else 'SQLite'}): "
            f"{elapsed:.1f} s ({cpu:.1f} s CPU; load average {load:.1f} on {os.cpu_count()} "
            f"cores), zip {target.stat().st_size / 1024**2:.0f} MiB "
            f"(evidence store {blobs / 1024**2:.0f} MiB), peak RSS {peak / 1024:.0f} MiB"
        )
        started = time.monotonic()
        verify = tocsin("package", "--verify", str(target))
        print(f"--verify: exit {verify.returncode} in {time.monotonic() - started:.1f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if args.pg:
            with create_engine(PG).begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()

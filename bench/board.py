"""The board under load: latency of every page and API list, one client and sixteen.

Seeds a store of 1,000,000 URLs and 100,000 incidents in 2,000 campaigns on 5,000
networks (with sites, checks, contacts, ladders, notices, replies, events and feed
records), starts the real ``tocsin board`` on it, logs in over HTTP, then measures:

- each page and API list with one client, one request after another: the first
  (cold) request, then p50, p95 and max of ``--requests`` more;
- 16 clients at once for ``--duration`` seconds over the same mix: requests/s and p95.

Goals (issue 10): p95 <= 150 ms for one client; >= 200 requests/s with p95 <= 500 ms
for 16. The clients run in two processes of their own (stdlib http.client, keep-alive),
on the same two cores as the board.

    .venv/bin/python bench/board.py                 # SQLite, full size
    .venv/bin/python bench/board.py --pg            # PostgreSQL, full size
    .venv/bin/python bench/board.py --scale 0.01    # a quick run
    .venv/bin/python bench/board.py --keep          # reuse the store seeded before
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, func, insert, select, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from board import auth  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import (  # noqa: E402
    Campaign,
    Check,
    Contact,
    Event,
    FeedSubmission,
    InboxMessage,
    Incident,
    IncidentUrl,
    IngestRun,
    Notice,
    NoticeItem,
    Recipient,
    Site,
    Submission,
    Url,
)
from tocsin.sandbox.core import to_toml  # noqa: E402
from tocsin.sandbox.web import free_port  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tocsin_board_bench"
SQLITE_PATH = Path(tempfile.gettempdir()) / "tocsin-board-bench" / "board.db"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
FAMILIES = ("injected-script", "card-skimmer", "phishing", "hidden-iframe", "cryptominer")
PASSWORD = "bench password 123"
CHUNK = 20_000


# --------------------------------------------------------------------------- seeding


def _insert(db: Database, table: object, rows: list[dict]) -> None:
    with db.engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[start : start + CHUNK])


def seed(db: Database, n_urls: int, n_incidents: int, n_campaigns: int, n_networks: int) -> dict:
    rng = random.Random(7)
    started = time.monotonic()

    def step(name: str, rows: list[dict], table: object) -> None:
        t = time.monotonic()
        _insert(db, table, rows)
        print(f"  {name:<16} {len(rows):>9,} rows  {time.monotonic() - t:6.1f} s", flush=True)

    step(
        "ingest_runs",
        [
            {
                "id": i,
                "started_at": NOW,
                "finished_at": NOW,
                "sources": ["bench"],
                "new": 0,
                "duplicate": 0,
                "rejected": 0,
                "campaign": None,
            }
            for i in range(1, 12)
        ],
        IngestRun.__table__,
    )
    step(
        "campaigns",
        [
            {
                "id": c,
                "name": f"wave-{c:04d}-{FAMILIES[c % 5]}",
                "family": FAMILIES[c % 5],
                "cluster_key": f"k{c}",
                "manual": False,
                "first_seen": NOW - timedelta(days=120),
                "last_seen": NOW,
                "iocs": {"domains": [f"evil-{c}.example"]},
                "tlp": "green" if c % 10 == 0 else None,
            }
            for c in range(1, n_campaigns + 1)
        ],
        Campaign.__table__,
    )
    # Campaign sizes are skewed (a few big waves, many small ones), as in real feeds.
    weights = [1 / (c**0.8) for c in range(1, n_campaigns + 1)]
    campaign_of = rng.choices(range(1, n_campaigns + 1), weights=weights, k=n_incidents)
    step(
        "sites",
        [
            {
                "id": i,
                "host": f"www.site-{i:06d}.example",
                "registered_domain": f"site-{i:06d}.example",
                "ips": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"],
                "cname_chain": [],
                "asn": 64512 + i % n_networks,
                "prefix": f"10.{i // 65536 % 256}.{i // 256 % 256}.0/24",
                "as_name": f"NET-{i % n_networks} Hosting {i % n_networks}, NL",
                "country": "NL",
                "registrar": "Example Registrar",
                "shared_hosting": False,
                "first_seen": NOW,
                "enrich_state": "done",
                "enrich_gaps": [],
                "enrich_attempts": 1,
                "meta": {},
            }
            for i in range(1, n_incidents + 1)
        ],
        Site.__table__,
    )
    verdicts = ["clean"] * 30 + ["offline"] * 25 + ["pending"] * 10 + ["error"] * 5
    urls, links = [], []
    per_incident = max(1, n_urls // n_incidents // 3)
    for u in range(1, n_urls + 1):
        site = u if u <= n_incidents else None
        if site is None and u <= n_incidents * (1 + per_incident):
            site = (u - 1) % n_incidents + 1
        malicious = site is not None
        url = f"http://www.site-{site or u:06d}.example/p/{u}"
        urls.append(
            {
                "id": u,
                "url": url,
                "url_hash": hashlib.sha256(url.encode()).hexdigest(),
                "host": f"www.site-{site or u:06d}.example",
                "site_id": site,
                "verdict": "malicious" if malicious else verdicts[u % len(verdicts)],
                "family": FAMILIES[campaign_of[site - 1] % 5] if site else None,
                "rules": ["tocsin_rule"] if site else None,
                "campaign_hint": None,
                "first_seen": NOW,
                "last_seen": NOW,
                "check_count": 1,
            }
        )
        if site is not None:
            links.append({"incident_id": site, "url_id": u, "added_at": NOW})
    step("urls", urls, Url.__table__)
    step(
        "feed_submissions",
        [
            {
                "run_id": 1 + u % 11,
                "url_id": u,
                "status": "new",
                "source": "bench",
                "source_ref": "bench",
                "format": "plain",
                "line_no": u,
                "submitted_at": NOW,
                "raw": "x",
            }
            for u in range(1, n_urls + 1)
        ],
        FeedSubmission.__table__,
    )
    del urls
    step(
        "checks",
        [
            {
                "id": i,
                "url_id": i,
                "kind": "confirm",
                "started_at": NOW,
                "finished_at": NOW,
                "route": "browser",
                "verdict": "malicious",
                "family": FAMILIES[campaign_of[i - 1] % 5],
                "rules": ["tocsin_rule"],
                "iocs": {"domains": ["evil.example"]},
                "evidence_lines": ["an injected script from hxxps://evil[.]example"],
                "redirect_chain": [],
                "meta": {"browser": {"title": f"Site {i}"}},
            }
            for i in range(1, n_incidents + 1)
        ],
        Check.__table__,
    )
    incidents, events = [], []
    for i in range(1, n_incidents + 1):
        seen = NOW - timedelta(days=rng.uniform(1, 120))
        notified = seen + timedelta(hours=rng.uniform(1, 24)) if rng.random() < 0.9 else None
        roll = rng.random()
        state = (
            "open" if roll < 0.45 or notified is None else "resolved" if roll < 0.95 else "reopened"
        )
        resolved = (
            min(NOW, notified + timedelta(days=rng.expovariate(1 / 6)))
            if state == "resolved" and notified
            else None
        )
        level = 0 if notified is None else rng.choice((1, 1, 1, 2, 2, 3))
        incidents.append(
            {
                "id": i,
                "public_id": f"TCS-{i:04X}-{i * 7919 % 65536:04X}",
                "site_id": i,
                "campaign_id": campaign_of[i - 1],
                "family": FAMILIES[campaign_of[i - 1] % 5],
                "state": state,
                "level": level,
                "first_seen": seen,
                "last_confirmed": seen,
                "last_check_id": i,
                "first_notified": notified,
                "level_reached_at": notified,
                "next_recheck_at": NOW + timedelta(days=1) if state != "resolved" else None,
                "recheck_index": 0,
                "resolved_at": resolved,
                "reopen_count": 1 if state == "reopened" else 0,
                "meta": {},
            }
        )
        events.append(
            {"at": seen, "kind": "incident.opened", "incident_id": i, "actor": "tocsin", "data": {}}
        )
        if notified:
            events.append(
                {
                    "at": notified,
                    "kind": "incident.notified",
                    "incident_id": i,
                    "actor": "tocsin",
                    "data": {"level": 1},
                }
            )
        if resolved:
            events.append(
                {
                    "at": resolved,
                    "kind": "incident.resolved",
                    "incident_id": i,
                    "actor": "tocsin",
                    "data": {},
                }
            )
    step("incidents", incidents, Incident.__table__)
    step("incident_urls", links, IncidentUrl.__table__)
    step("events", events, Event.__table__)
    n_contacts = n_networks
    step(
        "contacts",
        [
            {
                "id": c,
                "email": f"abuse@net-{c}.example",
                "role": "hosting",
                "source": "rdap:ip",
                "languages": [],
                "confidence": 1.0,
                "bounced": c % 17 == 0,
                "suppressed": False,
                "optout_types": [],
                "first_seen": NOW,
                "notices_sent": 0,
                "replies": 0,
                "bounces": 0,
                "fixes": 3,
                "fix_seconds_total": 3 * 86400 * 5.0,
            }
            for c in range(1, n_contacts + 1)
        ],
        Contact.__table__,
    )
    contact_of = {i: (i - 1) % n_networks + 1 for i in range(1, n_incidents + 1)}
    step(
        "recipients",
        [
            {
                "incident_id": i,
                "contact_id": contact_of[i],
                "level": 1,
                "role": "hosting",
                "reason": "rdap",
                "language": "en",
                "confidence": 1.0,
                "created_at": NOW,
            }
            for i in range(1, n_incidents + 1)
        ],
        Recipient.__table__,
    )
    # One notice per contact per batch of up to ten incidents it was told of at once.
    notices, items = [], []
    by_contact: dict[int, list[int]] = {}
    for inc in incidents:
        if inc["first_notified"] is not None:
            by_contact.setdefault(contact_of[inc["id"]], []).append(inc["id"])
    nid = 0
    for contact, ids in by_contact.items():
        for start in range(0, len(ids), 10):
            nid += 1
            ticket = f"TCS-N{nid:06d}"
            state = "bounced" if contact % 17 == 0 else "sent"
            notices.append(
                {
                    "id": nid,
                    "message_id": f"<{ticket}@bench>",
                    "ticket": ticket,
                    "contact_id": contact,
                    "recipient": f"abuse@net-{contact}.example",
                    "role": "hosting",
                    "kind": "first",
                    "level": 1,
                    "language": "en",
                    "part": 1,
                    "parts": 1,
                    "subject": f"[{ticket}] Compromised sites",
                    "message": (
                        f"Subject: [{ticket}] Compromised sites\r\n\r\nSee the list.\r\n"
                    ).encode(),
                    "state": state,
                    "attempts": 1,
                    "created_at": NOW,
                    "sent_at": NOW,
                }
            )
            for i in ids[start : start + 10]:
                items.append(
                    {
                        "notice_id": nid,
                        "incident_id": i,
                        "contact_id": contact,
                        "level": 1,
                        "episode": 0,
                    }
                )
    step("notices", notices, Notice.__table__)
    step("notice_items", items, NoticeItem.__table__)
    step(
        "inbox_messages",
        [
            {
                "key": hashlib.sha256(f"r{n}".encode()).hexdigest(),
                "message_id": f"<r{n}@x>",
                "kind": "reply",
                "notice_id": n,
                "sender": "abuse@x.example",
                "subject": "Re: ...",
                "received_at": NOW,
                "data": {},
            }
            for n in range(1, len(notices) + 1, 7)
        ],
        InboxMessage.__table__,
    )
    step(
        "submissions",
        [
            {
                "public_id": f"SUB-BNCH-{r:04d}",
                "run_id": r,
                "submitter": "rita",
                "source": "bench",
                "campaign": None,
                "created_at": NOW,
                "lines": n_urls // 11,
            }
            for r in range(1, 12)
        ],
        Submission.__table__,
    )
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (
                "urls",
                "incidents",
                "sites",
                "events",
                "checks",
                "notices",
                "notice_items",
                "incident_urls",
                "feed_submissions",
                "campaigns",
                "contacts",
            ):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"seconds": time.monotonic() - started}


def ensure_store(url: str, args: argparse.Namespace) -> Database:
    if url.startswith("postgresql") and not args.keep:
        admin = create_engine(url.rsplit("/", 1)[0] + "/test", isolation_level="AUTOCOMMIT")
        name = url.rsplit("/", 1)[1]
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    if url.startswith("sqlite") and not args.keep:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(url)
    migrate.upgrade(db)
    with db.session() as s:
        have = s.scalar(select(func.count()).select_from(Incident))
    if have:
        print(f"reusing the seeded store ({have:,} incidents)")
        return db
    print(f"seeding {url}")
    n = seed(db, args.urls, args.incidents, args.campaigns, args.networks)
    print(f"  seeded in {n['seconds']:.0f} s")
    return db


# --------------------------------------------------------------------------- the board


def start_board(url: str, folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port("127.0.0.1")
    config = folder / "bench.toml"
    config.write_text(
        to_toml(
            {
                "database": {"url": url},
                "board": {"secret": "bench-secret-0123456789", "max_failures": 1_000_000},
            }
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin",
            "-q",
            "--config",
            str(config),
            "board",
            "--port",
            str(port),
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "board.log", "wb"),  # noqa: SIM115
    )
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the board did not start: " + (folder / "board.log").read_text())


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("set-cookie").split(";", 1)[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    body = urlencode({"csrf": csrf, "name": "bench", "password": PASSWORD, "next": "/"})
    conn.request(
        "POST",
        "/login",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    return response.getheader("set-cookie").split(";", 1)[0]


def endpoints(db: Database) -> list[tuple[str, str, int]]:
    """(name, path, expected status); ``API`` paths are sent with the analyst's token."""
    with db.session() as s:
        n_campaigns = s.scalar(select(func.count()).select_from(Campaign))
        n_open = s.scalar(
            select(func.count()).select_from(Incident).where(Incident.state == "open")
        )
        big = s.scalar(
            select(Incident.campaign_id)
            .group_by(Incident.campaign_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        typical = s.scalar(
            select(Incident.campaign_id)
            .group_by(Incident.campaign_id)
            .order_by(func.count().desc())
            .offset(min(500, n_campaigns // 4))
            .limit(1)
        )
        name = s.scalar(select(Campaign.name).where(Campaign.id == typical))
        incident = s.scalars(
            select(Incident).where(Incident.state == "open").offset(min(777, n_open // 2)).limit(1)
        ).one()
        site = s.get(Site, incident.site_id)
        middle = s.scalar(select(func.max(Url.id))) // 2
    return [
        ("page /", "/", 200),
        ("page / sorted by median", "/?sort=median", 200),
        ("page / name filter", "/?q=wave-01", 200),
        ("page / page 5", "/?page=5", 200),
        ("page campaign (typical)", f"/campaigns/{typical}", 200),
        ("page campaign (largest)", f"/campaigns/{big}", 200),
        ("page incident", f"/incidents/{incident.public_id}", 200),
        ("page network", f"/networks/{site.asn}", 200),
        ("page search ticket", f"/search?q={incident.public_id}", 303),
        ("page search host", f"/search?q={site.host}", 200),
        ("page search ip", f"/search?q={site.ips[0]}", 200),
        ("api status", "API/api/v1/status", 200),
        ("api campaigns", "API/api/v1/campaigns", 200),
        ("api campaign", f"API/api/v1/campaigns/{typical}", 200),
        ("api incidents of campaign", f"API/api/v1/incidents?campaign={typical}", 200),
        ("api incident", f"API/api/v1/incidents/{incident.public_id}", 200),
        ("api network", f"API/api/v1/networks/{site.asn}", 200),
        ("api urls", "API/api/v1/urls?limit=100", 200),
        ("api urls malicious", "API/api/v1/urls?verdict=malicious&limit=100", 200),
        ("api urls by asn", f"API/api/v1/urls?asn={site.asn}", 200),
        ("api urls by campaign", f"API/api/v1/urls?campaign={quote(name)}", 200),
        ("api urls cursor", f"API/api/v1/urls?cursor={middle}&limit=100", 200),
        ("api urls researcher", "RES/api/v1/urls?limit=100", 200),
        ("api submission", "RES/api/v1/submissions/SUB-BNCH-0003", 200),
    ]


class Client:
    """One keep-alive connection with the analyst's cookie and the tokens."""

    def __init__(self, port: int, cookie: str, tokens: dict[str, str]) -> None:
        self.port, self.cookie, self.tokens = port, cookie, tokens
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[int, float]:
        headers = {"Cookie": self.cookie}
        for prefix, role in (("API", "analyst"), ("RES", "researcher")):
            if path.startswith(prefix):
                path = path[3:]
                headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return 0, time.perf_counter() - started
        return response.status, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _worker(
    port: int, cookie: str, tokens: dict, paths: list, threads: int, until: float, out
) -> None:
    results: list[tuple[int, int, float]] = []
    lock = threading.Lock()

    def run(seed: int) -> None:
        client = Client(port, cookie, tokens)
        rng = random.Random(seed)
        mine = []
        while time.time() < until:
            _, path, expected = rng.choice(paths)
            status, seconds = client.get(path)
            mine.append((status, expected, seconds))
        with lock:
            results.extend(mine)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(results)


def measure(db: Database, port: int, args: argparse.Namespace, engine: str) -> bool:
    with db.session() as s:
        now = datetime.now(UTC)
        auth.add_user(s, "bench", "analyst", PASSWORD, now)
        for name in ("bench-analyst", "rita"):
            auth.revoke_token(s, name, now)
        tokens = {
            "analyst": auth.create_token(s, "bench-analyst", "analyst", now),
            "researcher": auth.create_token(s, "rita", "researcher", now),
        }
    cookie = login(port)
    paths = endpoints(db)
    client = Client(port, cookie, tokens)
    print(f"\n{engine}: one client, {args.requests} requests per endpoint after the first")
    print(f"  {'endpoint':<28} {'cold ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    errors = 0
    for name, path, expected in paths:
        status, cold = client.get(path)
        times = []
        for _ in range(args.requests):
            status, seconds = client.get(path)
            errors += status != expected
            times.append(seconds)
        p95 = pct(times, 0.95)
        worst = max(worst, p95)
        print(
            f"  {name:<28} {cold * 1000:8.1f} {pct(times, 0.5):8.1f} {p95:8.1f}"
            f" {max(times) * 1000:8.1f}"
        )
    print(f"  worst p95 {worst:.1f} ms (goal <= 150), unexpected statuses {errors}")

    until = time.time() + args.duration
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_worker,
            args=(port, cookie, tokens, paths, args.concurrency // 2, until, queue),
        )
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [r for _ in procs for r in queue.get()]
    for p in procs:
        p.join()
    bad = sum(status != expected for status, expected, _ in results)
    times = [seconds for _, _, seconds in results]
    rps = len(results) / args.duration
    p95 = pct(times, 0.95)
    print(
        f"\n{engine}: {args.concurrency} clients for {args.duration:.0f} s: "
        f"{len(results)} requests, "
        f"{rps:.0f} requests/s, p50 {pct(times, 0.5):.1f} ms, p95 {p95:.1f} ms, errors {bad}"
    )
    ok = worst <= 150 and rps >= 200 and p95 <= 500 and not bad and not errors
    print(f"{engine}: goals {'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a SQLAlchemy URL (default: a SQLite file)")
    parser.add_argument("--pg", action="store_true", help=f"use {PG_URL}")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="reuse the store seeded before")
    args = parser.parse_args()
    args.urls = int(1_000_000 * args.scale)
    args.incidents = int(100_000 * args.scale)
    args.campaigns = max(5, int(2_000 * args.scale))
    args.networks = max(5, int(5_000 * args.scale))
    url = args.database or (PG_URL if args.pg else f"sqlite:///{SQLITE_PATH}")
    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {engine}; scale {args.scale}")
    db = ensure_store(url, args)
    folder = Path(tempfile.mkdtemp(prefix="tocsin-board-bench-"))
    proc, port = start_board(url, folder)
    try:
        ok = measure(db, port, args, engine)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        db.dispose()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""The board under load: latency of every page and API list, one client and sixteen.

    .venv/bin/python bench/board.py                  # SQLite, full size (seeds once, minutes)
    .venv/bin/python bench/board.py --pg             # PostgreSQL (tocsin_board_bench), full size
    .venv/bin/python bench/board.py --both --keep    # both engines, reusing what was seeded
    .venv/bin/python bench/board.py --scale 0.01     # a quick look (10,000 URLs)
    .venv/bin/python bench/board.py --pg --keep --requests 30 --duration 10

Seeds a store of 1,000,000 URLs and 100,000 incidents in 2,000 campaigns on 5,000
networks (``--urls --incidents --campaigns --networks``, or ``--scale``): sites spread
over the networks with skewed sizes (a few big hosters, a long tail), campaigns of skewed
sizes, incidents open, resolved and re-opened over the last 120 days at ladder levels 0
to 3, one to ten URLs each, a check per malicious URL (and a clean re-check per resolved
incident), contacts (hosting desks, owners, registrars, CERTs), ladders, about 50,000
notices with their RFC 5322 text, replies and bounces, several hundred thousand events,
and a feed record per URL in ingest runs, a few of them API submissions. It inserts in
few transactions (SQLite: executemany with ``synchronous=OFF``; PostgreSQL: ``COPY``,
then ``ANALYZE``). The SQLite file stays in /tmp/tocsin-board-bench/ and the PostgreSQL
database stays too, so ``--keep`` re-runs skip the seeding.

Then it starts the real ``tocsin board`` (its default ``board.workers``, or ``--workers``)
as a subprocess, logs in over HTTP like a browser, makes analyst and researcher API tokens
with the board's own code, and measures:

- with one client (one keep-alive connection, one request after another), every page
  and API list: the first request after the start ("cold": it fills the board's caches
  of views, which it recomputes whenever the store moves), then p50, p95 and max of
  ``--requests`` more;
- with ``--concurrency`` clients (one process each, keep-alive) cycling through the same
  mix for ``--duration`` seconds: requests/s, p50, p95, max, errors. Each client first goes
  once through the mix, not counted, so that every board worker has filled its caches.

Every response's status is checked (200, or 303 where a redirect is the answer); any
other counts as an error and the first few are printed. The goals (issue 10): p95 <= 150
ms for one client; >= 200 requests/s with p95 <= 500 ms for 16 clients.

The machine has two cores, shared by the board's workers, the database (PostgreSQL's
backends), the clients and anything else running: the load average is printed first, and
the CPU each of them used in the concurrent run after it. The clients use the standard
library's http.client, the cheapest client there is, to take as little as they can.
``--live`` appends an event every second while measuring, as a running pipeline would, so
the board's cached views are recomputed as they would be in production.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from sqlalchemy import JSON, create_engine, func, insert, inspect, select, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from board import auth  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import (  # noqa: E402
    Base,
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
    Reject,
    Site,
    SiteContact,
    Submission,
    Url,
)
from store.types import UTCDateTime  # noqa: E402
from tocsin.sandbox.core import to_toml  # noqa: E402
from tocsin.sandbox.web import free_port  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tocsin_board_bench"
HOME = Path(tempfile.gettempdir()) / "tocsin-board-bench"  # its own cache of seeded stores
SEED_LOG = HOME / "seeded.json"
CHUNK = 20_000
PASSWORD = "bench password 0123"
ANALYST, TOKEN_ANALYST, RESEARCHER = "bench", "bench-analyst", "rita"
GOAL_P95_ONE, GOAL_RPS, GOAL_P95_MANY = 150.0, 200.0, 500.0

FAMILIES = (
    "socgholish",
    "card-skimmer",
    "phishing-kit",
    "seo-spam",
    "cryptominer",
    "hidden-iframe",
    "fake-update",
    "webshell",
)
WORDS = (
    "shop",
    "blog",
    "news",
    "garden",
    "bakery",
    "travel",
    "photo",
    "studio",
    "club",
    "law",
    "dental",
    "auto",
    "home",
    "cafe",
    "yoga",
    "farm",
    "books",
    "music",
    "wine",
    "tech",
)
TLDS = ("com", "net", "org", "de", "fr", "nl", "jp", "com.br", "co.uk", "it", "es", "pl")
COUNTRIES = ("US", "DE", "NL", "FR", "GB", "JP", "BR", "PL", "IT", "ES", "RU", "IN", "CA", "SG")
HOSTERS = ("OVH", "HETZNER", "GODADDY", "DIGITALOCEAN", "LINODE", "CONTABO", "IONOS", "AMAZON")
FEEDS = (("urlhaus", "urlhaus-csv"), ("phishtank", "phishtank-json"), ("openphish", "plain"))
REGISTRARS = 20
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # as store.incidents writes tickets


# --------------------------------------------------------------------------- sizes, ids


@dataclass(frozen=True)
class Sizes:
    urls: int
    incidents: int
    campaigns: int
    networks: int

    def as_dict(self) -> dict[str, int]:
        return {
            "urls": self.urls,
            "incidents": self.incidents,
            "campaigns": self.campaigns,
            "networks": self.networks,
        }


def ticket(prefix: str, n: int) -> str:
    """A unique, random-looking ticket id per ``n`` (an odd multiplier mod 2**40 is a
    bijection), in the store's own shape: ``TCS-7K3M-9QXP``."""
    x = (n * 0x9E3779B1 + 0x5BD1E995) % (1 << 40)
    body = "".join(ALPHABET[(x >> (5 * k)) & 31] for k in range(8))
    return f"{prefix}-{body[:4]}-{body[4:]}"


def weighted(rng: random.Random, n: int, exponent: float, k: int) -> list[int]:
    """``k`` draws of 1..n, rank r with weight r**-exponent, ranks shuffled over the ids."""
    ids = list(range(1, n + 1))
    rng.shuffle(ids)
    cumulative = list(accumulate(r**-exponent for r in range(1, n + 1)))
    total = cumulative[-1]
    return [ids[min(n - 1, bisect_left(cumulative, rng.random() * total))] for _ in range(k)]


# --------------------------------------------------------------------------- loading


class Loader:
    """Bulk inserts: executemany on SQLite (one connection, synchronous=OFF, one
    transaction per table), COPY on PostgreSQL. Foreign keys are enforced on both."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = db.engine.connect()
        raw = self.conn.connection.dbapi_connection
        if db.is_sqlite:
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute("PRAGMA cache_size=-524288")  # 512 MB: index builds stay in memory
        else:
            self.pg = raw
        self.counts: dict[str, int] = {}

    def load(self, table: Any, rows: Iterable[dict[str, Any]]) -> None:
        table = getattr(table, "__table__", table)
        started = time.monotonic()
        n = 0
        rows = iter(rows)
        if self.db.is_sqlite:
            with self.conn.begin():
                while chunk := list(islice(rows, CHUNK)):
                    self.conn.execute(insert(table), chunk)
                    n += len(chunk)
        else:
            n = self._copy(table, rows)
        self.counts[table.name] = n
        seconds = time.monotonic() - started
        print(
            f"  {table.name:<17} {n:>10,} rows {seconds:7.1f} s {n / max(seconds, 1e-9):>10,.0f}/s",
            flush=True,
        )

    def _copy(self, table: Any, rows: Iterator[dict[str, Any]]) -> int:
        first = next(rows, None)
        if first is None:
            return 0
        names = list(first)
        converters: list[Callable[[Any], Any] | None] = []
        for name in names:
            kind = table.c[name].type
            if isinstance(kind, UTCDateTime):
                converters.append(_naive)
            elif isinstance(kind, JSON) or "JSON" in type(kind).__name__.upper():
                converters.append(_json)
            else:
                converters.append(None)
        pairs = list(zip(names, converters, strict=True))
        n = 0
        with self.pg.cursor() as cursor:
            columns = ", ".join(names)
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                for row in _chain(first, rows):
                    copy.write_row(
                        [
                            (conv(row[k]) if conv and row[k] is not None else row[k])
                            for k, conv in pairs
                        ]
                    )
                    n += 1
        self.pg.commit()
        return n

    def close(self) -> None:
        if self.db.is_sqlite:
            self.conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        self.conn.close()


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _json(value: Any) -> str:
    return json.dumps(value)


# --------------------------------------------------------------------------- the data


@dataclass
class World:
    """What the generated tables share, kept in plain lists indexed by id."""

    now: datetime
    sizes: Sizes
    url_text: list[str] = field(default_factory=list)
    malicious: list[int] = field(default_factory=list)  # URL ids, in id order
    check_of_url: dict[int, int] = field(default_factory=dict)


def seed(db: Database, sizes: Sizes) -> dict[str, Any]:
    """Generate and load the whole store; returns what was loaded and how long it took."""
    rng = random.Random(20261206)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=120)
    span = (now - start).total_seconds()
    n_urls, n_inc, n_camp, n_net = sizes.urls, sizes.incidents, sizes.campaigns, sizes.networks
    w = World(now, sizes)
    started = time.monotonic()
    loader = Loader(db)

    # ----- incidents' shape first: how many URLs each, which campaign, which network
    per_incident = [1 if rng.random() < 0.95 else rng.randint(2, 10) for _ in range(n_inc)]
    if sum(per_incident) > n_urls // 2:  # tiny runs: keep most URLs for the rest
        per_incident = [1] * n_inc
    n_mal = sum(per_incident)
    mal_ids = sorted(rng.sample(range(1, n_urls + 1), n_mal))
    w.malicious = mal_ids
    urls_of: list[list[int]] = [[]]  # 1-based by incident id
    pos = 0
    for k in per_incident:
        urls_of.append(mal_ids[pos : pos + k])
        pos += k
    incident_of_url = {u: i for i in range(1, n_inc + 1) for u in urls_of[i]}
    campaign_of = [0, *weighted(rng, n_camp, 0.9, n_inc)]
    network_of = [0, *weighted(rng, n_net, 0.8, n_inc)]
    family_of_campaign = [""] + [FAMILIES[c % len(FAMILIES)] for c in range(1, n_camp + 1)]

    def seen_at(url_id: int) -> datetime:
        return start + timedelta(seconds=span * (url_id - 1) / n_urls)

    # ----- networks and their sites
    networks = []
    for k in range(1, n_net + 1):
        hoster = HOSTERS[k % len(HOSTERS)]
        networks.append(
            {
                "asn": 13_000 + 7 * k,
                "as_name": f"{hoster}-{k} {WORDS[k % len(WORDS)].title()} Hosting",
                "country": COUNTRIES[k % len(COUNTRIES)],
                "o1": 20 + k // 250,
                "o2": k % 250,
                "shared": k % 3 == 0,  # a shared hoster: many sites per address
                "sites": 0,
            }
        )
    site_rows = []
    host_of_site = [""]
    for i in range(1, n_inc + 1):
        net = networks[network_of[i] - 1]
        j = net["sites"]
        net["sites"] += 1
        if net["shared"]:
            j //= 8  # eight sites an address
        ip = f"{net['o1']}.{net['o2']}.{j // 250 % 250}.{j % 250 + 1}"
        domain = f"{WORDS[i % 20]}-{WORDS[i // 20 % 20]}-{i}.{TLDS[i % len(TLDS)]}"
        host = f"www.{domain}" if i % 3 else domain
        host_of_site.append(host)
        site_rows.append(
            {
                "id": i,
                "host": host,
                "registered_domain": domain,
                "ips": [ip] if i % 5 else [ip, f"2001:db8:{net['o2']:x}::{j % 65535:x}"],
                "cname_chain": [],
                "asn": net["asn"],
                "prefix": f"{net['o1']}.{net['o2']}.{j // 250 % 250}.0/24",
                "as_name": net["as_name"],
                "country": net["country"],
                "network_name": f"NET-{net['o1']}-{net['o2']}",
                "registrar": f"Registrar {i % REGISTRARS} Inc.",
                "registrar_iana_id": str(1000 + i % REGISTRARS),
                "cdn": "cloudflare" if i % 23 == 0 else None,
                "shared_hosting": net["shared"],
                "first_seen": seen_at(urls_of[i][0]),
                "enrich_state": "done" if i % 11 else "partial",
                "enriched_at": seen_at(urls_of[i][0]) + timedelta(minutes=20),
                "enrich_gaps": [] if i % 11 else ["security.txt"],
                "enrich_attempts": 1,
                "meta": {"rdap": {"handle": f"NET-{net['o1']}-{net['o2']}"}},
            }
        )

    # ----- incidents: times, states, levels; (id, seen, notified, state, level,
    # resolved, level reached, reopen count, seen again)
    inc = []
    for i in range(1, n_inc + 1):
        seen = min(seen_at(urls_of[i][0]) + timedelta(hours=rng.uniform(0.5, 12)), now)
        notified = seen + timedelta(hours=rng.uniform(0.5, 30)) if rng.random() < 0.92 else None
        if notified is not None and notified >= now:
            notified = None
        state, level, resolved, reached, reopen, again = "open", 0, None, None, 0, None
        if notified is not None:
            top = rng.choices((1, 2, 3), (55, 28, 17))[0]
            fix = notified + timedelta(days=rng.expovariate(1 / (4 + 5 * top)))
            if fix < now and rng.random() < 0.85:
                state, resolved = "resolved", fix
            level, reached = 1, notified
            for k in (2, 3):
                at = notified + timedelta(days=7 * (k - 1) + rng.uniform(0, 1))
                if k <= top and at < (resolved or now):
                    level, reached = k, at
        if state == "resolved" and rng.random() < 0.12:
            reopen = 1
            again = resolved + timedelta(days=rng.uniform(2, 20))
            if again < now and rng.random() < 0.6:
                # Compromised again and open again: the store resets the ladder.
                state, level, resolved, reached = "reopened", 0, None, None
                notified = again + timedelta(hours=6)
                if notified < now and rng.random() < 0.5:
                    level, reached = 1, notified
                else:
                    notified = None
            else:
                again = None
        inc.append((i, seen, notified, state, level, resolved, reached, reopen, again))

    # ----- campaigns, their extent from their incidents
    camp_first: dict[int, datetime] = {}
    camp_last: dict[int, datetime] = {}
    for row in inc:
        c = campaign_of[row[0]]
        camp_first[c] = min(camp_first.get(c, row[1]), row[1])
        camp_last[c] = max(camp_last.get(c, row[1]), row[1])
    labels = [None] * 85 + ["green"] * 10 + ["clear"] * 2 + ["red"] * 3

    def campaign_name(c: int) -> str:
        return f"{family_of_campaign[c]}-{WORDS[c % 20]}-{c:04d}"

    print(f"seeding {sizes.as_dict()} (generated the shape in {time.monotonic() - started:.1f} s)")
    loader.load(
        Campaign,
        (
            {
                "id": c,
                "name": campaign_name(c),
                "family": family_of_campaign[c],
                "cluster_key": None if c % 20 == 0 else f"{family_of_campaign[c]}|evil-{c}.example",
                "manual": c % 20 == 0,
                "first_seen": camp_first.get(c, start),
                "last_seen": camp_last.get(c, start),
                "iocs": {
                    "domains": [f"evil-{c}.example", f"cdn-{c}.evil.example"],
                    "scripts": [f"https://cdn-{c}.evil.example/jquery.min.js"],
                },
                "tlp": labels[c % len(labels)],
            }
            for c in range(1, n_camp + 1)
        ),
    )
    loader.load(Site, site_rows)
    del site_rows

    # ----- URLs: the malicious ones on their incident's site, the rest all over
    pool = max(1, n_urls * 3 // 10)
    verdicts = ("clean", "offline", "pending", "error", "suspicious")
    verdict_weights = (26, 20, 14, 20, 7)
    plugin = ("contact-form", "wp-seo", "cache", "slider", "x")

    def url_rows() -> Iterator[dict[str, Any]]:
        for u in range(1, n_urls + 1):
            seen = seen_at(u)
            i = incident_of_url.get(u)
            site_id = None
            if i is not None:
                verdict, site_id = "malicious", i
                host = host_of_site[i]
                family = family_of_campaign[campaign_of[i]]
                shape = u % 4
                if shape == 0:
                    url = f"https://{host}/wp-content/plugins/{plugin[u % 5]}/{u:x}/update.js"
                elif shape == 1:
                    url = f"https://{host}/checkout/onepage/?sid={u:x}"
                elif shape == 2:
                    url = f"https://{host}/secure/{u:x}/login.php?email=user{u % 1000}@example.com"
                else:
                    url = f"http://{host}/index.php?p={u}"
            else:
                verdict = rng.choices(verdicts, verdict_weights)[0]
                family = "phishing-kit" if verdict == "suspicious" else None
                roll = rng.random()
                if roll < 0.25 and n_inc:  # another page of a compromised site
                    site_id = rng.randint(1, n_inc)
                    host = host_of_site[site_id]
                    url = f"https://{host}/{WORDS[u % 20]}/{u:x}.html"
                elif roll < 0.35:  # a bot payload on a bare address
                    host = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{u // 256 % 256}.{u % 250}"
                    url = f"http://{host}/bins/{('mozi.m', 'x86', 'arm7', 'i')[u % 4]}?{u}"
                else:
                    h = rng.randrange(pool)
                    host = f"{WORDS[h % 20]}-{WORDS[h // 20 % 20]}{h}.{TLDS[h % len(TLDS)]}"
                    url = f"https://{host}/{WORDS[u % 20]}/{u:x}/invoice.php?id={u}"
            w.url_text.append(url)
            checked = verdict != "pending"
            yield {
                "id": u,
                "url": url,
                "url_hash": hashlib.sha256(url.encode()).hexdigest(),
                "host": host,
                "site_id": site_id,
                "verdict": verdict,
                "family": family,
                "confidence": 0.95 if verdict == "malicious" else None,
                "rules": [f"tocsin_{family.replace('-', '_')}"] if family else None,
                "campaign_hint": None,
                "first_seen": seen,
                "last_seen": seen + timedelta(days=u % 3),
                "last_checked": seen + timedelta(minutes=30) if checked else None,
                "next_check_at": now + timedelta(days=u % 7) if verdict == "offline" else None,
                "check_count": (1 + u % 3) if checked else 0,
                "verdict_at": seen + timedelta(minutes=30) if checked else None,
            }

    loader.load(Url, url_rows())

    # ----- feed records: ingest runs of 10,000 lines, 3 % seen again later as duplicates
    run_size = 10_000
    n_runs = math.ceil(n_urls / run_size)
    dup_every = 33
    submissions = max(3, round(20 * n_urls / 1_000_000))
    big_submission = max(50, min(10_000, n_urls // 100))
    sub_lines = [big_submission] + [
        rng.randint(50, max(50, min(2_000, n_urls // 200))) for _ in range(submissions - 1)
    ]
    run_rows = []
    for r in range(1, n_runs + 1):
        first, last = (r - 1) * run_size + 1, min(r * run_size, n_urls)
        dups = len(range(first + dup_every, last + 1, dup_every)) if r > 1 else 0
        run_rows.append(
            {
                "id": r,
                "started_at": seen_at(first),
                "finished_at": seen_at(first) + timedelta(seconds=40),
                "sources": [FEEDS[r % len(FEEDS)][0]],
                "campaign": None,
                "new": last - first + 1,
                "duplicate": dups,
                "rejected": 0,
            }
        )
    for s, lines in enumerate(sub_lines):
        run_rows.append(
            {
                "id": n_runs + 1 + s,
                "started_at": now - timedelta(days=submissions - s),
                "finished_at": now - timedelta(days=submissions - s) + timedelta(seconds=5),
                "sources": ["api"],
                "campaign": None,
                "new": 0,
                "duplicate": lines,
                "rejected": 2,
            }
        )
    loader.load(IngestRun, run_rows)

    sub_urls = []
    for lines in sub_lines:  # a submission: mostly malicious URLs, some of the rest
        picked = rng.sample(mal_ids, min(len(mal_ids), lines * 6 // 10))
        picked += rng.sample(range(1, n_urls + 1), lines - len(picked))
        sub_urls.append(picked)

    def feed_rows() -> Iterator[dict[str, Any]]:
        for r in range(1, n_runs + 1):
            source, shape = FEEDS[r % len(FEEDS)]
            first, last = (r - 1) * run_size + 1, min(r * run_size, n_urls)
            ref = f"https://feeds.example/{source}/{r}.txt"
            line = 0
            for u in range(first, last + 1):
                line += 1
                yield _feed_row(r, u, "new", source, ref, shape, line, seen_at(u), w.url_text)
            if r > 1:  # lines naming URLs an earlier run brought
                for u in range(first + dup_every, last + 1, dup_every):
                    line += 1
                    back = u - run_size
                    yield _feed_row(
                        r, back, "duplicate", source, ref, shape, line, seen_at(u), w.url_text
                    )
        for s, picked in enumerate(sub_urls):
            r = n_runs + 1 + s
            at = now - timedelta(days=submissions - s)
            for line, u in enumerate(picked, 1):
                yield _feed_row(
                    r, u, "duplicate", "api", f"api:sub{s}", "api", line, at, w.url_text
                )

    loader.load(FeedSubmission, feed_rows())
    loader.load(
        Reject,
        (
            {
                "run_id": n_runs + 1 + s,
                "source_ref": f"api:sub{s}",
                "format": "api",
                "line_no": len(sub_urls[s]) + k,
                "reason": "not a URL",
                "raw": f"not a url {s}-{k}".encode(),
                "raw_len": 12,
                "created_at": now - timedelta(days=submissions - s),
            }
            for s in range(submissions)
            for k in (1, 2)
        ),
    )

    # ----- checks: one per malicious URL, and a clean re-check per resolved incident
    inc_by_id = {row[0]: row for row in inc}

    def check_rows() -> Iterator[dict[str, Any]]:
        cid = 0
        for u in mal_ids:
            i = incident_of_url[u]
            c = campaign_of[i]
            family = family_of_campaign[c]
            cid += 1
            w.check_of_url[u] = cid
            at = seen_at(u) + timedelta(minutes=20)
            yield {
                "id": cid,
                "url_id": u,
                "kind": "confirm",
                "started_at": at,
                "finished_at": at + timedelta(seconds=14),
                "route": "browser",
                "route_reason": "html page",
                "verdict": "malicious",
                "family": family,
                "confidence": 0.95,
                "rules": [f"tocsin_{family.replace('-', '_')}", "tocsin_external_script"],
                "iocs": {
                    "domains": [f"cdn-{c}.evil.example"],
                    "urls": [f"https://cdn-{c}.evil.example/jquery.min.js?v={u % 97}"],
                },
                "evidence_lines": [
                    f'<script src="hxxps://cdn-{c}[.]evil[.]example/jquery.min.js"></script>',
                    f"request to hxxps://cdn-{c}[.]evil[.]example/collect (POST, 2 kB)",
                ],
                "error": None,
                "http_status": 200,
                "final_url": w.url_text[u - 1],
                "redirect_chain": [],
                "content_type": "text/html; charset=utf-8",
                "payload_sha256": None,
                "meta": {"browser": {"title": f"{WORDS[i % 20].title()} – Home"}},
            }
        for i, row in inc_by_id.items():
            if row[3] == "resolved" and row[5] is not None:
                cid += 1
                u = urls_of[i][0]
                w.check_of_url[-i] = cid  # the incident's last check
                yield {
                    "id": cid,
                    "url_id": u,
                    "kind": "recheck",
                    "started_at": row[5],
                    "finished_at": row[5] + timedelta(seconds=9),
                    "route": "browser",
                    "route_reason": "re-check",
                    "verdict": "clean",
                    "family": None,
                    "confidence": None,
                    "rules": [],
                    "iocs": {},
                    "evidence_lines": [],
                    "error": None,
                    "http_status": 200,
                    "final_url": w.url_text[u - 1],
                    "redirect_chain": [],
                    "content_type": "text/html; charset=utf-8",
                    "payload_sha256": None,
                    "meta": {"browser": {"title": f"{WORDS[i % 20].title()} – Home"}},
                }

    loader.load(Check, check_rows())

    def incident_rows() -> Iterator[dict[str, Any]]:
        for i, seen, notified, state, level, resolved, reached, reopen, again in inc:
            last_check = w.check_of_url.get(-i) or w.check_of_url[urls_of[i][-1]]
            yield {
                "id": i,
                "public_id": ticket("TCS", i),
                "site_id": i,
                "campaign_id": campaign_of[i],
                "family": family_of_campaign[campaign_of[i]],
                "state": state,
                "level": level,
                "first_seen": seen,
                "last_confirmed": max(seen, again or seen),
                "last_check_id": last_check,
                "first_notified": notified,
                "level_reached_at": reached,
                "next_recheck_at": None if state == "resolved" else now + timedelta(hours=i % 72),
                "recheck_index": 0 if state == "resolved" else i % 5,
                "resolved_at": resolved,
                "reopen_count": reopen,
                "recheck_requested_at": None,
                "tlp": "red" if i % 97 == 0 else None,
                "meta": {},
            }

    loader.load(Incident, incident_rows())
    loader.load(
        IncidentUrl,
        (
            {"incident_id": i, "url_id": u, "added_at": inc_by_id[i][1]}
            for i in range(1, n_inc + 1)
            for u in urls_of[i]
        ),
    )

    # ----- contacts: a hosting desk per network, owners, registrars, CERTs
    contacts = []
    hosting_of_net = {}
    for k, net in enumerate(networks, 1):
        hosting_of_net[k] = len(contacts) + 1
        contacts.append(("hosting", f"abuse@{net['as_name'].split()[0].lower()}.example", k))
    registrar_contact = {}
    for r in range(REGISTRARS):
        registrar_contact[r] = len(contacts) + 1
        contacts.append(("registrar", f"abuse@registrar{r}.example", r))
    cert_contact = {}
    for cc in COUNTRIES:
        cert_contact[cc] = len(contacts) + 1
        contacts.append(("cert", f"incident@cert.{cc.lower()}.example", cc))
    owner_of_site = {}
    for i in range(1, n_inc + 1):
        if i % 10 == 0:  # a tenth of the sites name their owner (security.txt, WHOIS)
            owner_of_site[i] = len(contacts) + 1
            domain = host_of_site[i].removeprefix("www.")
            contacts.append(("owner", f"security@{domain}", i))
    bounced = {cid for cid, c in enumerate(contacts, 1) if c[0] == "hosting" and cid % 19 == 0}

    # ----- notices: per contact, the incidents it was told of in the same week in one message
    groups: dict[tuple[int, int, str], list[tuple[int, datetime]]] = defaultdict(list)
    for i, _, notified, _, level, *_ in inc:
        if notified is None:
            continue
        net_k = network_of[i]
        site_country = networks[net_k - 1]["country"]
        week = notified.strftime("%G-%V")  # a desk hears of its sites once a week
        groups[(hosting_of_net[net_k], 1, week)].append((i, notified))
        if i in owner_of_site:
            groups[(owner_of_site[i], 1, f"{i}")].append((i, notified))
        for k in range(2, level + 1):
            at = notified + timedelta(days=7 * (k - 1))
            who = registrar_contact[i % REGISTRARS] if k == 2 else cert_contact[site_country]
            groups[(who, k, at.date().isoformat())].append((i, at))
    notices, items, recipients = [], [], []
    stats: dict[int, Counter] = defaultdict(Counter)
    nid = 0
    for (contact_id, level, _), members in sorted(groups.items(), key=lambda g: g[1][0][1]):
        role, email, _ = contacts[contact_id - 1]
        for part_start in range(0, len(members), 50):
            part = members[part_start : part_start + 50]
            nid += 1
            sent = max(at for _, at in part)
            tick = ticket("TCS", (1 << 39) + nid)
            state = "bounced" if contact_id in bounced else ("failed" if nid % 97 == 0 else "sent")
            subject = f"[{tick}] {len(part)} compromised website(s) on your network"
            notices.append(
                {
                    "id": nid,
                    "message_id": f"<{tick.lower()}.{nid}@tocsin.example>",
                    "ticket": tick,
                    "contact_id": contact_id,
                    "recipient": email,
                    "role": role,
                    "kind": "first" if level == 1 else "followup",
                    "level": level,
                    "language": "ja" if email.endswith(".jp.example") else "en",
                    "part": 1 + part_start // 50,
                    "parts": math.ceil(len(members) / 50),
                    "subject": subject,
                    "message": _message(
                        tick, email, subject, sent, [host_of_site[i] for i, _ in part]
                    ),
                    "state": state,
                    "attempts": 1 if state == "sent" else 3,
                    "last_error": None if state == "sent" else "550 5.1.1 mailbox unavailable",
                    "claimed_by": None,
                    "created_at": sent - timedelta(minutes=2),
                    "sending_at": sent - timedelta(seconds=5),
                    "sent_at": sent if state != "failed" else None,
                    "next_attempt_at": None,
                }
            )
            for i, _ in part:
                items.append(
                    {
                        "notice_id": nid,
                        "incident_id": i,
                        "contact_id": contact_id,
                        "level": level,
                        "episode": inc_by_id[i][7] if inc_by_id[i][3] == "reopened" else 0,
                    }
                )
                recipients.append(
                    {
                        "incident_id": i,
                        "contact_id": contact_id,
                        "level": level,
                        "role": role,
                        "reason": {
                            "hosting": "rdap:ip abuse contact of the address",
                            "owner": "security.txt of the site",
                            "registrar": "rdap:domain registrar abuse contact",
                            "cert": "national CERT of the network's country",
                        }[role],
                        "language": "en",
                        "note": None,
                        "cdn": None,
                        "confidence": 0.9,
                        "created_at": inc_by_id[i][1],
                    }
                )
                stats[contact_id]["sent"] += 1
                row = inc_by_id[i]
                if row[3] == "resolved" and row[5] is not None and level == 1:
                    stats[contact_id]["fixes"] += 1
                    stats[contact_id]["seconds"] += int((row[5] - row[2]).total_seconds())
    loader.load(
        Contact,
        (
            {
                "id": cid,
                "email": email,
                "role": role,
                "source": {
                    "hosting": "rdap:ip",
                    "owner": "security.txt",
                    "registrar": "rdap:domain",
                    "cert": "config",
                }[role],
                "name": None,
                "phone": None,
                "language": None,
                "languages": [],
                "confidence": 0.9,
                "bounced": cid in bounced,
                "bounced_at": now - timedelta(days=3) if cid in bounced else None,
                "suppressed": False,
                "suppress_reason": None,
                "optout_types": [],
                "first_seen": start,
                "notices_sent": stats[cid]["sent"],
                "replies": stats[cid]["sent"] // 9,
                "bounces": stats[cid]["sent"] if cid in bounced else 0,
                "fixes": stats[cid]["fixes"],
                "fix_seconds_total": float(stats[cid]["seconds"]),
            }
            for cid, (role, email, _) in enumerate(contacts, 1)
        ),
    )

    def site_contact_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, n_inc + 1):
            found = inc_by_id[i][1]
            pairs = [
                (hosting_of_net[network_of[i]], "hosting", "rdap:ip"),
                (registrar_contact[i % REGISTRARS], "registrar", "rdap:domain"),
            ]
            if i in owner_of_site:
                pairs.append((owner_of_site[i], "owner", "security.txt"))
            for contact_id, role, source in pairs:
                yield {
                    "site_id": i,
                    "contact_id": contact_id,
                    "role": role,
                    "source": source,
                    "confidence": 0.9,
                    "note": None,
                    "found_at": found,
                }

    loader.load(SiteContact, site_contact_rows())
    unique_rungs = {(r["incident_id"], r["contact_id"], r["level"]): r for r in recipients}
    loader.load(Recipient, unique_rungs.values())
    loader.load(Notice, notices)
    loader.load(NoticeItem, items)

    def inbox_rows() -> Iterator[dict[str, Any]]:
        for n in notices:
            if n["state"] == "bounced":
                kind, sender, subject = "dsn", "MAILER-DAEMON@mx.example", "Undelivered Mail"
            elif n["state"] == "sent" and n["id"] % 9 == 0:
                kind, sender, subject = "reply", n["recipient"], f"Re: {n['subject']}"
            elif n["state"] == "sent" and n["id"] % 31 == 0:
                kind, sender, subject = "auto", n["recipient"], "Out of office"
            else:
                continue
            yield {
                "key": hashlib.sha256(f"inbox-{n['id']}".encode()).hexdigest(),
                "message_id": f"<reply-{n['id']}@mx.example>",
                "kind": kind,
                "notice_id": n["id"],
                "sender": sender,
                "subject": subject,
                "received_at": n["sent_at"] + timedelta(hours=5),
                "data": {"status": "5.1.1"} if kind == "dsn" else {"words": 42},
            }

    loader.load(InboxMessage, inbox_rows())

    # ----- events: the log of all of it, in time order
    events: list[tuple[datetime, str, int | None, str | None, int | None, dict]] = []
    for i, seen, notified, state, level, resolved, _, reopen, again in inc:
        c = campaign_of[i]
        events.append((seen, "incident.opened", i, None, None, {"campaign": campaign_name(c)}))
        if again is not None:  # the first episode: notified, resolved, then compromised again
            events.append((seen + timedelta(hours=3), "incident.notified", i, None, None, {}))
            events.append((again - timedelta(days=2), "incident.resolved", i, None, None, {}))
            events.append((again, "incident.reopened", i, None, None, {"episode": reopen}))
        if notified is not None:
            events.append((notified, "incident.notified", i, None, None, {"level": 1}))
            for k in range(2, level + 1):
                at = notified + timedelta(days=7 * (k - 1))
                events.append((at, "incident.escalated", i, None, None, {"level": k}))
        for k in range(rng.randint(0, 3) if state != "resolved" else 1):
            at = seen + timedelta(days=1 + 2 * k)
            if at < (resolved or now):
                events.append((at, "incident.confirmed", i, None, None, {}))
        if resolved is not None:
            events.append((resolved, "incident.resolved", i, None, None, {"level": level}))
    for n in notices:
        events.append((n["created_at"], "notice.queued", None, "notice", n["id"], {}))
        if n["sent_at"] is not None:
            events.append((n["sent_at"], "notice.sent", None, "notice", n["id"], {}))
    events.sort(key=lambda e: e[0])
    loader.load(
        Event,
        (
            {
                "id": k,
                "at": min(at, now),
                "kind": kind,
                "incident_id": incident_id,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "actor": "tocsin",
                "data": data,
            }
            for k, (at, kind, incident_id, subject_type, subject_id, data) in enumerate(events, 1)
        ),
    )
    loader.load(
        Submission,
        (
            {
                "id": s + 1,
                "public_id": ticket("SUB", s + 1),
                "run_id": n_runs + 1 + s,
                "submitter": RESEARCHER if s % 2 else TOKEN_ANALYST,
                "source": "api",
                "campaign": None,
                "created_at": now - timedelta(days=submissions - s),
                "lines": len(picked) + 2,
            }
            for s, picked in enumerate(sub_urls)
        ),
    )
    loader.close()
    finish_started = time.monotonic()
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in loader.counts:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {name}))"
                )
            conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE {time.monotonic() - finish_started:.1f} s")
    seconds = time.monotonic() - started
    print(f"seeded {sum(loader.counts.values()):,} rows in {seconds:.0f} s")
    return {"seconds": round(seconds, 1), "rows": loader.counts, "sizes": sizes.as_dict()}


def _feed_row(
    run: int,
    url_id: int,
    status: str,
    source: str,
    ref: str,
    shape: str,
    line: int,
    at: datetime,
    texts: list[str],
) -> dict[str, Any]:
    url = texts[url_id - 1]
    if shape == "urlhaus-csv":
        raw = f'"{url_id}","{at:%Y-%m-%d %H:%M:%S}","{url}","online","","malware_download","js",'
    elif shape == "phishtank-json":
        raw = json.dumps({"phish_id": url_id, "url": url, "verified": "yes"})
    else:
        raw = url
    return {
        "run_id": run,
        "url_id": url_id,
        "status": status,
        "source": source,
        "source_ref": ref,
        "format": shape,
        "line_no": line,
        "reporter": "bench" if source != "api" else None,
        "feed_ref": str(url_id) if source != "api" else None,
        "threat": "malware_download" if source == "urlhaus" else None,
        "tags": ["js"] if source == "urlhaus" else None,
        "target": None,
        "extra": None,
        "reported_at": at - timedelta(minutes=30),
        "submitted_at": at,
        "raw": raw,
    }


def _message(tick: str, to: str, subject: str, at: datetime, hosts: list[str]) -> bytes:
    lines = "\r\n".join(f"  - {h} (hxxps://{h}/)" for h in hosts)
    return (
        f"From: tocsin <reports@tocsin.example>\r\nTo: {to}\r\n"
        f"Reply-To: reports+{tick.lower()}@tocsin.example\r\nSubject: {subject}\r\n"
        f"Date: {at:%a, %d %b %Y %H:%M:%S +0000}\r\nMessage-ID: <{tick.lower()}@tocsin.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Hello,\r\n\r\nThese websites on your network serve malicious code ({tick}):\r\n\r\n"
        f"{lines}\r\n\r\nThe evidence is attached as X-ARF reports. Please have them cleaned.\r\n"
        "\r\n-- \r\ntocsin\r\n"
    ).encode()


# --------------------------------------------------------------------------- the store


def _seed_log() -> dict[str, Any]:
    try:
        return json.loads(SEED_LOG.read_text())
    except (OSError, ValueError):
        return {}


def schema_gaps(db: Database) -> list[str]:
    """Columns and indexes of ``store.models`` the database lacks: a store made before a
    migration was edited in place (rather than followed by a new one) lacks them."""
    inspector = inspect(db.engine)
    gaps = []
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        gaps += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
        gaps += [str(i.name) for i in table.indexes if str(i.name) not in indexes]
    return gaps


def prepare(url: str, sizes: Sizes, keep: bool) -> tuple[Database, dict[str, Any]]:
    """The seeded store at ``url``: reused with ``--keep`` when it holds these sizes in
    the schema of ``store.models``, else emptied and seeded."""
    if keep:
        db = Database(url)
        try:
            migrate.upgrade(db)
            with db.session() as s:
                have = Sizes(
                    s.scalar(select(func.count()).select_from(Url)),
                    s.scalar(select(func.count()).select_from(Incident)),
                    s.scalar(select(func.count()).select_from(Campaign)),
                    s.scalar(select(func.count(func.distinct(Site.asn)))),
                )
            gaps = schema_gaps(db)
        except Exception:  # no database, no tables: seed it
            have, gaps = None, []
        if gaps:
            print(f"--keep: the store lacks {', '.join(gaps)} (an older schema): seeding afresh")
        elif have is not None and (have.urls, have.incidents, have.campaigns) == (
            sizes.urls,
            sizes.incidents,
            sizes.campaigns,
        ):
            log = _seed_log().get(url, {})
            print(f"reusing the seeded store ({have.urls:,} URLs, {have.incidents:,} incidents)")
            return db, {**log, "reused": True}
        else:
            print(f"--keep: the store holds {have}, not {sizes}: seeding it afresh")
        db.dispose()
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        base, name = url.rsplit("/", 1)
        admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    db = Database(url)
    migrate.upgrade(db)
    info = seed(db, sizes)
    log = _seed_log()
    log[url] = {**info, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    HOME.mkdir(parents=True, exist_ok=True)
    SEED_LOG.write_text(json.dumps(log, indent=1))
    return db, info


def credentials(db: Database) -> dict[str, str]:
    """The analyst's log-in and the two API tokens, made with the board's own code."""
    now = datetime.now(UTC)
    with db.session() as s:
        auth.add_user(s, ANALYST, "analyst", PASSWORD, now)
        tokens = {}
        for name, role in ((TOKEN_ANALYST, "analyst"), (RESEARCHER, "researcher")):
            auth.revoke_token(s, name, now)
            s.flush()
            tokens[role] = auth.create_token(s, name, role, now)
    return tokens


@dataclass
class Endpoint:
    name: str
    path: str
    who: str  # session | analyst | researcher
    expected: int = 200


def endpoints(db: Database) -> list[Endpoint]:
    """Every page and API list, on ids picked from the seeded store: typical ones (the
    median campaign and network, an incident with notices) and the largest."""
    with db.session() as s:
        by_size = [
            c
            for c, _ in s.execute(
                select(Incident.campaign_id, func.count())
                .group_by(Incident.campaign_id)
                .order_by(func.count().desc(), Incident.campaign_id)
            )
        ]
        big, typical = by_size[0], by_size[len(by_size) // 2]
        typical_name = s.scalar(select(Campaign.name).where(Campaign.id == typical))
        big_name = s.scalar(select(Campaign.name).where(Campaign.id == big))
        asns = [
            a
            for a, _ in s.execute(
                select(Site.asn, func.count())
                .group_by(Site.asn)
                .order_by(func.count().desc(), Site.asn)
            )
        ]
        big_asn, typical_asn = asns[0], asns[len(asns) // 2]
        # A typical ticket: escalated to level 2, several URLs and notices.
        told = (
            select(NoticeItem.incident_id)
            .group_by(NoticeItem.incident_id)
            .having(func.count() >= 2)
            .limit(20_000)
        )
        many_urls = (
            select(IncidentUrl.incident_id)
            .group_by(IncidentUrl.incident_id)
            .having(func.count() >= 2)
        )
        incident = (
            s.scalars(
                select(Incident)
                .where(Incident.id.in_(told), Incident.id.in_(many_urls), Incident.level == 2)
                .order_by(Incident.id)
                .limit(1)
            ).first()
            or s.scalars(select(Incident).order_by(Incident.id).limit(1)).one()
        )
        site = s.get(Site, incident.site_id)
        sub = s.scalars(select(Submission).order_by(Submission.id).limit(1)).one()
        middle = (s.scalar(select(func.max(Url.id))) or 2) // 2
        name_part = typical_name.split("-")[1][:5]  # e.g. "skimm": an eighth of the names
    return [
        Endpoint("page /", "/", "session"),
        Endpoint("page /?sort=median", "/?sort=median", "session"),
        Endpoint(f"page /?q={name_part}", f"/?q={name_part}", "session"),
        Endpoint("page /?page=5", "/?page=5", "session"),
        Endpoint("page campaign (typical)", f"/campaigns/{typical}", "session"),
        Endpoint("page campaign (largest)", f"/campaigns/{big}", "session"),
        Endpoint("page incident", f"/incidents/{incident.public_id}", "session"),
        Endpoint("page network (typical)", f"/networks/{typical_asn}", "session"),
        Endpoint("page network (largest)", f"/networks/{big_asn}", "session"),
        Endpoint("page search ticket", f"/search?q={incident.public_id}", "session", 303),
        Endpoint("page search host", f"/search?q={site.host}", "session"),
        Endpoint("page search ip", f"/search?q={site.ips[0]}", "session"),
        Endpoint("api status", "/api/v1/status", "analyst"),
        Endpoint("api campaigns", "/api/v1/campaigns", "analyst"),
        Endpoint("api campaign (typical)", f"/api/v1/campaigns/{typical}", "analyst"),
        Endpoint("api campaign (largest)", f"/api/v1/campaigns/{big}", "analyst"),
        Endpoint(
            "api incidents ?campaign (typ)", f"/api/v1/incidents?campaign={typical}", "analyst"
        ),
        Endpoint("api incidents ?campaign (big)", f"/api/v1/incidents?campaign={big}", "analyst"),
        Endpoint("api incident", f"/api/v1/incidents/{incident.public_id}", "analyst"),
        Endpoint("api network (typical)", f"/api/v1/networks/{typical_asn}", "analyst"),
        Endpoint("api urls", "/api/v1/urls?limit=100", "analyst"),
        Endpoint("api urls malicious", "/api/v1/urls?verdict=malicious&limit=100", "analyst"),
        Endpoint("api urls ?asn (typical)", f"/api/v1/urls?asn={typical_asn}", "analyst"),
        Endpoint("api urls ?asn (largest)", f"/api/v1/urls?asn={big_asn}", "analyst"),
        Endpoint(
            "api urls ?campaign (typical)",
            f"/api/v1/urls?campaign={quote(typical_name)}",
            "analyst",
        ),
        Endpoint(
            "api urls ?campaign (largest)", f"/api/v1/urls?campaign={quote(big_name)}", "analyst"
        ),
        Endpoint("api urls ?cursor=middle", f"/api/v1/urls?cursor={middle}&limit=100", "analyst"),
        Endpoint("api urls (researcher)", "/api/v1/urls?limit=100", "researcher"),
        Endpoint("api submission", f"/api/v1/submissions/{sub.public_id}", "analyst"),
    ]


# --------------------------------------------------------------------------- the board


def start_board(url: str, folder: Path, workers: int | None) -> tuple[subprocess.Popen, int]:
    port = free_port("127.0.0.1")
    board: dict[str, Any] = {"secret": "bench-secret-" + "0" * 32, "max_failures": 1_000_000}
    if workers:
        board["workers"] = workers
    config = folder / "tocsin.toml"
    config.write_text(
        to_toml(
            {"database": {"url": url}, "board": board, "evidence": {"dir": str(folder / "ev")}}
        ),
        encoding="utf-8",
    )
    log = (folder / "board.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tocsin", "--config", str(config)),
            *("board", "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the board did not start:\n" + (folder / "board.log").read_text())


def stop_board(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    out = {}
    for header in response.msg.get_all("set-cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        out[name.strip()] = value.strip()
    return out


def login(port: int) -> str:
    """Log in as a browser does: the form, its CSRF field and cookie, then the POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login?next=/")
    response = conn.getresponse()
    page = response.read().decode()
    form_cookie = _cookies(response)["tocsin_login"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    body = urlencode({"name": ANALYST, "password": PASSWORD, "csrf": csrf, "next": "/"})
    conn.request(
        "POST",
        "/login",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"tocsin_login={form_cookie}",
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 303:
        raise SystemExit(f"log-in failed: HTTP {response.status}")
    return _cookies(response)["tocsin_session"]


class Client:
    """One keep-alive connection, sending the session cookie or a bearer token."""

    def __init__(self, port: int, cookie: str, tokens: dict[str, str]) -> None:
        self.port = port
        self.headers = {
            "session": {"Cookie": f"tocsin_session={cookie}"},
            "analyst": {"Authorization": f"Bearer {tokens['analyst']}"},
            "researcher": {"Authorization": f"Bearer {tokens['researcher']}"},
        }
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, endpoint: Endpoint) -> tuple[int, float, bytes]:
        started = time.perf_counter()
        try:
            self.conn.request("GET", endpoint.path, headers=self.headers[endpoint.who])
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            return 0, time.perf_counter() - started, repr(exc).encode()
        return response.status, time.perf_counter() - started, body


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def _client_process(
    port: int,
    cookie: str,
    tokens: dict[str, str],
    mix: list[Endpoint],
    offset: int,
    barrier: Any,
    duration: float,
    out: Any,
) -> None:
    """One concurrent client: once through the mix (the warm-up), then, from when every
    client is warm, round and round it from ``offset`` for ``duration`` seconds."""
    client = Client(port, cookie, tokens)
    warm = []
    for j in range(len(mix)):
        k = (offset + j) % len(mix)
        status, seconds, _ = client.get(mix[k])
        warm.append((k, seconds, status))
    barrier.wait()
    # A fresh connection: the board closes one left idle past its keep-alive timeout (5 s)
    # while the slower clients were still warming up.
    client.conn.close()
    stop_at = time.time() + duration
    results = []
    k = offset
    while True:
        began = time.time()
        if began >= stop_at:
            break
        endpoint = mix[k % len(mix)]
        status, seconds, body = client.get(endpoint)
        ok = status == endpoint.expected
        results.append((k % len(mix), began, seconds, status, b"" if ok else body[:300]))
        k += 1
    out.send((warm, results))
    out.close()


class CpuMeter:
    """Who used the two cores between ``start()`` and ``stop()``: the board's processes,
    PostgreSQL's (backends come and go: a live one counts from when it was first seen, one
    gone by the end through the postmaster's reaped children), the bench's own client
    processes, and everything else on the machine. On PostgreSQL it also counts the
    connections opened to the store (``pg_stat_database.sessions``)."""

    def __init__(
        self, board: subprocess.Popen, clients: Iterable[int] = (), pg_url: str | None = None
    ) -> None:
        self.board_pid = board.pid
        self.client_pids = set(clients)
        self.pg = create_engine(pg_url, poolclass=NullPool) if pg_url else None

    def _sessions(self) -> int:
        if self.pg is None:
            return 0
        with self.pg.connect() as conn:
            return conn.scalar(
                text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            )

    def _groups(self) -> dict[str, dict[int, float]]:
        board = {self.board_pid} | {
            c.pid for c in psutil.Process(self.board_pid).children(recursive=True)
        }
        out: dict[str, dict[int, float]] = {"board": {}, "postgres": {}, "clients": {}}
        for p in psutil.process_iter(["name", "cpu_times"]):
            times = p.info["cpu_times"]
            if times is None:
                continue
            busy = times.user + times.system
            if p.pid in board:
                out["board"][p.pid] = busy
            elif p.pid in self.client_pids or p.pid == os.getpid():
                out["clients"][p.pid] = busy
            elif (p.info["name"] or "").startswith("postgres"):
                out["postgres"][p.pid] = busy + times.children_user + times.children_system
        return out

    @staticmethod
    def _machine() -> tuple[float, float]:
        t = psutil.cpu_times()
        return time.monotonic(), sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def start(self) -> None:
        self.sessions = self._sessions()
        self.before, self.machine_before = self._groups(), self._machine()

    def stop(self) -> str:
        after, (t1, busy1) = self._groups(), self._machine()
        sessions = self._sessions() - self.sessions - 1  # less the meter's own
        t0, busy0 = self.machine_before
        used = {
            group: sum(v - self.before[group].get(pid, 0.0) for pid, v in after[group].items())
            for group in after
        }
        other = max(0.0, busy1 - busy0 - sum(used.values()))
        wall = t1 - t0
        return (
            f"CPU over {wall:.0f} s ({2 * wall:.0f} core-s): board {used['board']:.1f} s, "
            f"postgres {used['postgres']:.1f} s, bench clients {used['clients']:.1f} s, "
            f"other processes {other:.1f} s; load average {os.getloadavg()[0]:.2f}"
            + (f"; {sessions:,} PostgreSQL connections opened" if self.pg is not None else "")
        )


def _tick(url: str, stop: Any) -> None:
    db = Database(url)
    n = 0
    while not stop.wait(1.0):
        with db.session() as s:
            s.add(Event(at=datetime.now(UTC), kind="bench.tick", actor="bench", data={"n": n}))
        n += 1
    db.dispose()


class Ticker:
    """``--live``: one event a second, as a running pipeline writes, so the board's cached
    views go stale and are recomputed as they would be in production. A process of its
    own: the bench forks its clients later, and must hold no thread then."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("fork")
        self.stop = context.Event()
        self.proc = context.Process(target=_tick, args=(url, self.stop), daemon=True)

    def __enter__(self) -> Ticker:
        self.proc.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.proc.join(timeout=10)


@dataclass
class Result:
    engine: str
    seed: dict[str, Any]
    concurrency: int
    single: list[tuple[Endpoint, float, list[float], int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unexpected: int = 0
    rps: float = 0.0
    many_p50: float = 0.0
    many_p95: float = 0.0
    many_max: float = 0.0
    many_errors: int = 0
    many_requests: int = 0

    @property
    def worst(self) -> tuple[str, float]:
        name, p95 = max(((e.name, pct(t, 0.95)) for e, _, t, _ in self.single), key=lambda x: x[1])
        return name, p95

    def verdict(self) -> tuple[bool, str]:
        name, worst = self.worst
        over = [e.name for e, _, t, _ in self.single if pct(t, 0.95) > GOAL_P95_ONE]
        one = worst <= GOAL_P95_ONE and not self.unexpected
        many = self.rps >= GOAL_RPS and self.many_p95 <= GOAL_P95_MANY and not self.many_errors
        text_ = (
            f"{self.engine}: one client: worst p95 {worst:.0f} ms ({name}) -> "
            f"{'MET' if one else 'NOT MET'}"
            + (f" ({len(over)} endpoints over {GOAL_P95_ONE:.0f} ms)" if over else "")
            + f"; {self.concurrency} clients: {self.rps:.0f} requests/s, p95 {self.many_p95:.0f} ms"
            + f", {self.many_errors} errors -> {'MET' if many else 'NOT MET'}"
        )
        return one and many, text_


def measure(
    engine: str, url: str, db: Database, seed_info: dict[str, Any], args: argparse.Namespace
) -> Result:
    result = Result(engine, seed_info, args.concurrency)
    tokens = credentials(db)
    mix = endpoints(db)
    db.dispose()
    folder = Path(tempfile.mkdtemp(prefix="tocsin-board-bench-"))
    proc, port = start_board(url, folder, args.workers)
    ticker = Ticker(url) if args.live else None
    try:
        if ticker:
            ticker.__enter__()
        cookie = login(port)
        client = Client(port, cookie, tokens)
        print(
            f"\n{engine}: one client, one request at a time: the first (cold), "
            f"then {args.requests} more"
        )
        header = f"  {'endpoint':<31} {'status':>6} {'KB':>6} {'cold ms':>8} {'p50 ms':>8}"
        print(header + f" {'p95 ms':>8} {'max ms':>8}")
        meter = CpuMeter(proc, pg_url=None if url.startswith("sqlite") else url)
        meter.start()
        for endpoint in mix:
            times, statuses = [], []
            for k in range(args.requests + 1):
                status, seconds, body = client.get(endpoint)
                statuses.append(status)
                if k == 0:
                    cold = seconds
                else:
                    times.append(seconds)
                if status != endpoint.expected and len(result.errors) < 5:
                    result.errors.append(f"{endpoint.name}: HTTP {status}: {body[:200]!r}")
            bad = sum(s != endpoint.expected for s in statuses)
            result.unexpected += bad
            result.single.append((endpoint, cold, times, bad))
            p95 = pct(times, 0.95)
            flag = " *" if p95 > GOAL_P95_ONE else ""
            print(
                f"  {endpoint.name:<31} {statuses[-1]:>6} {len(body) / 1024:6.1f} "
                f"{cold * 1000:8.1f} {pct(times, 0.5):8.1f} {p95:8.1f} "
                f"{max(times) * 1000:8.1f}{flag}",
                flush=True,
            )
        client.conn.close()
        print("  " + meter.stop())
        concurrent(result, port, cookie, tokens, mix, proc, args)
    finally:
        if ticker:
            ticker.__exit__()
        stop_board(proc)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def concurrent(
    result: Result,
    port: int,
    cookie: str,
    tokens: dict[str, str],
    mix: list[Endpoint],
    proc: subprocess.Popen,
    args: argparse.Namespace,
) -> None:
    """``--concurrency`` client processes: each goes once through the mix (so that every
    board worker has filled its caches: a connection stays with one worker), then all
    run for ``--duration`` seconds; the statistics are over the requests that started
    and ended in that window."""
    n = args.concurrency
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(n + 1)
    pipes, children = [], []
    warm_started = time.time()
    for k in range(n):
        ours, theirs = context.Pipe(duplex=False)
        child = context.Process(
            target=_client_process,
            args=(port, cookie, tokens, mix, k * len(mix) // n, barrier, args.duration, theirs),
        )
        child.start()
        theirs.close()
        pipes.append(ours)
        children.append(child)
    pg_url = None if args.url.startswith("sqlite") else args.url
    meter = CpuMeter(proc, [c.pid for c in children], pg_url)
    barrier.wait(timeout=1800)
    start_at = time.time()
    stop_at = start_at + args.duration
    meter.start()
    while time.time() < stop_at:
        time.sleep(0.01)
    cpu = meter.stop()
    warm, rows = [], []
    for pipe in pipes:
        w, r = pipe.recv()
        warm += w
        rows += r
    for child in children:
        child.join()
    counted = [r for r in rows if r[1] >= start_at and r[1] + r[2] <= stop_at]
    times = [r[2] for r in counted]
    bad = [r for r in counted if r[3] != mix[r[0]].expected]
    result.many_requests = len(counted)
    result.rps = len(counted) / args.duration
    result.many_p50, result.many_p95 = pct(times, 0.5), pct(times, 0.95)
    result.many_max = max(times) * 1000 if times else float("nan")
    result.many_errors = len(bad)
    for r in bad[:5]:
        result.errors.append(f"{mix[r[0]].name} (concurrent): HTTP {r[3]}: {r[4][:200]!r}")
    warm_bad = sum(1 for k, _, status in warm if status != mix[k].expected)
    result.many_errors += warm_bad
    print(
        f"\n{result.engine}: {n} clients (one process each, keep-alive), cycling through the "
        f"{len(mix)} endpoints for {args.duration:.0f} s"
    )
    print(
        f"  warm-up (each client once through them, not counted): {start_at - warm_started:.1f} s,"
        f" p95 {pct([w[1] for w in warm], 0.95):.0f} ms, max {max(w[1] for w in warm) * 1000:.0f}"
        f" ms, errors {warm_bad}"
    )
    print(
        f"  {len(counted):,} requests, {result.rps:.0f} requests/s, p50 {result.many_p50:.0f} ms,"
        f" p95 {result.many_p95:.0f} ms, max {result.many_max:.0f} ms, errors {len(bad)}"
    )
    print("  " + cpu)
    per: dict[int, list[float]] = defaultdict(list)
    for r in counted:
        per[r[0]].append(r[2])
    slow = sorted(per.items(), key=lambda kv: -pct(kv[1], 0.95))[:6]
    print(
        "  slowest under load (p95 ms): "
        + ", ".join(f"{mix[k].name} {pct(v, 0.95):.0f}" for k, v in slow)
    )


def report(result: Result) -> None:
    seed = result.seed
    how = "reused, seeded earlier" if seed.get("reused") else "seeded now"
    if "seconds" in seed:
        print(f"\n{result.engine}: seed time {seed['seconds']:.0f} s ({how})")
    if result.errors:
        print(f"{result.engine}: unexpected responses (first {len(result.errors)}):")
        for line in result.errors:
            print("  " + line)


def code_version() -> str:
    """The commit measured, and the files of the board and the store changed since."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h %cd %s", "--date=format:%H:%M"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "board", "store", "templates"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    dirty = [line[3:] for line in changed if line.strip()]
    return head[:90] + (f"; uncommitted changes in {', '.join(dirty)}" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help=f"a SQLAlchemy URL (default: a SQLite file in {HOME})")
    parser.add_argument(
        "--pg", action="store_true", help=f"use {PG_URL} (_N for other sizes; made and seeded)"
    )
    parser.add_argument("--both", action="store_true", help="SQLite, then PostgreSQL")
    parser.add_argument("--scale", type=float, default=1.0, help="all four sizes times this")
    parser.add_argument("--urls", type=int)
    parser.add_argument("--incidents", type=int)
    parser.add_argument("--campaigns", type=int)
    parser.add_argument("--networks", type=int)
    parser.add_argument("--requests", type=int, default=100, help="per endpoint, one client")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds, concurrent run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, help="board.workers (default: the board's)")
    parser.add_argument("--keep", action="store_true", help="reuse the store seeded before")
    parser.add_argument("--live", action="store_true", help="append an event a second")
    args = parser.parse_args()
    sizes = Sizes(
        args.urls or round(1_000_000 * args.scale),
        args.incidents or round(100_000 * args.scale),
        args.campaigns or max(5, round(2_000 * args.scale)),
        args.networks or max(5, round(5_000 * args.scale)),
    )
    full = sizes == Sizes(1_000_000, 100_000, 2_000, 5_000)
    # Other sizes get their own file and database, so a quick run keeps the full store.
    sqlite_url = f"sqlite:///{HOME / ('board.db' if full else f'board-{sizes.urls}.db')}"
    pg_url = PG_URL if full else f"{PG_URL}_{sizes.urls}"
    if args.both:
        targets = [("SQLite", sqlite_url), ("PostgreSQL", pg_url)]
    elif args.database:
        kind = "SQLite" if args.database.startswith("sqlite") else "PostgreSQL"
        targets = [(kind, args.database)]
    else:
        targets = [("PostgreSQL", pg_url)] if args.pg else [("SQLite", sqlite_url)]
    load = os.getloadavg()
    print(f"code: {code_version()}")
    print(
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"({os.cpu_count()} cores); sizes {sizes.as_dict()}"
        + ("; --live: an event a second" if args.live else "")
    )
    results = []
    for engine, url in targets:
        print(f"\n=== {engine}: {url}")
        args.url = url
        db, seed_info = prepare(url, sizes, args.keep)
        results.append(measure(engine, url, db, seed_info, args))
        report(results[-1])
    print()
    ok = True
    for result in results:
        met, line = result.verdict()
        ok &= met
        print(line)
    print(
        f"goals: one client p95 <= {GOAL_P95_ONE:.0f} ms; {args.concurrency} clients "
        f">= {GOAL_RPS:.0f} requests/s with p95 <= {GOAL_P95_MANY:.0f} ms"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

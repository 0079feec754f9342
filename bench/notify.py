"""Benchmark `tocsin notify`: the outbox at scale, and SMTP throughput to the sandbox.

    .venv/bin/python bench/notify.py                    # 100,000 incidents, 5,000 recipients
    .venv/bin/python bench/notify.py --incidents 5000 --recipients 250 --smtp-messages 100
    .venv/bin/python bench/notify.py --database postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/notify.py --workers 2        # two notifiers at once
    .venv/bin/python bench/notify.py --render-workers 1 # one process, no render workers

Part 1 seeds a fresh store with open incidents spread over recipients (what
crawl and enrich would leave: sites, URLs, malicious checks with evidence
lines, incidents, one ladder rung each) and times ``tocsin notify`` writing
them to a maildir outbox: one message per recipient with a CSV and one
validated X-ARF report per incident. Goal: 100,000 incidents across 5,000
recipients in at most 60 s. Each ``tocsin notify`` plans and renders in
``notify.workers`` processes (default 2; ``--render-workers`` sets it) while
its main process stores and sends. ``--workers N`` runs N notifier processes
at once on the same store (the outbox protocol shares the work; each notice
is still written once).

Part 2 starts the sandbox and times ``tocsin notify`` in smtp mode sending
one message per recipient to its relay on 127.25.0.1, in messages per second.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from store import migrate  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import (  # noqa: E402
    Campaign,
    Check,
    Contact,
    Incident,
    IncidentUrl,
    Notice,
    NoticeItem,
    Recipient,
    Site,
    Url,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LAST_CPU = [0.0]
FAMILIES = ["injected-script", "card-skimmer", "phishing", "malware-download", "cryptominer"]


def seed(db: Database, incidents: int, recipients: int, chunk: int = 5000) -> None:
    """Bulk-insert what the crawl and enrich stages would have stored."""
    with db.session() as s:
        s.execute(
            insert(Campaign),
            [
                {
                    "id": n + 1,
                    "name": f"bench-{f}",
                    "family": f,
                    "manual": False,
                    "first_seen": T0,
                    "last_seen": T0,
                    "iocs": {},
                }
                for n, f in enumerate(FAMILIES)
            ],
        )
        s.execute(
            insert(Contact),
            [
                {
                    "id": r + 1,
                    "email": f"abuse@net{r}.example",
                    "role": "hosting",
                    "source": "bench",
                    "languages": [],
                    "confidence": 1.0,
                    "bounced": False,
                    "suppressed": False,
                    "optout_types": [],
                    "first_seen": T0,
                    "notices_sent": 0,
                    "replies": 0,
                    "bounces": 0,
                    "fixes": 0,
                    "fix_seconds_total": 0.0,
                }
                for r in range(recipients)
            ],
        )
    for start in range(0, incidents, chunk):
        ids = range(start + 1, min(start + chunk, incidents) + 1)
        sites, urls, checks, incs, links, rungs = [], [], [], [], [], []
        for i in ids:
            family = FAMILIES[i % len(FAMILIES)]
            net = (i - 1) % recipients
            host = f"site{i}.example{net}.com"
            ip = f"127.{10 + net // 65536 % 200}.{net // 256 % 256}.{net % 256}"
            url = f"http://{host}/wp-content/index.php?p={i}"
            sites.append(
                {
                    "id": i,
                    "host": host,
                    "registered_domain": f"example{net}.com",
                    "ips": [ip],
                    "cname_chain": [],
                    "asn": 64500 + net % 1000,
                    "prefix": ip.rsplit(".", 1)[0] + ".0/24",
                    "as_name": f"NET-{net}",
                    "country": "JP" if net % 7 == 0 else "US",
                    "shared_hosting": False,
                    "first_seen": T0,
                    "enrich_state": "done",
                    "meta": {},
                    "enrich_gaps": [],
                    "enrich_attempts": 1,
                }
            )
            urls.append(
                {
                    "id": i,
                    "url": url,
                    "url_hash": sha256(url.encode()).hexdigest(),
                    "host": host,
                    "site_id": i,
                    "verdict": "malicious",
                    "family": family,
                    "first_seen": T0,
                    "last_seen": T0,
                    "check_count": 1,
                }
            )
            checks.append(
                {
                    "id": i,
                    "url_id": i,
                    "kind": "confirm",
                    "started_at": T0,
                    "finished_at": T0,
                    "route": "browser",
                    "verdict": "malicious",
                    "family": family,
                    "confidence": 0.9,
                    "rules": [family],
                    "iocs": {"domains": ["evil.example"]},
                    "evidence_lines": [
                        f"script hxxps://evil[.]example/{i}.js injected into /",
                        "the script sends form fields to hxxps://evil[.]example/c",
                    ],
                    "redirect_chain": [],
                    "meta": {},
                }
            )
            incs.append(
                {
                    "id": i,
                    "public_id": f"TCS-B{i:07d}",
                    "site_id": i,
                    "campaign_id": FAMILIES.index(family) + 1,
                    "family": family,
                    "state": "open",
                    "level": 0,
                    "first_seen": T0,
                    "last_confirmed": T0,
                    "last_check_id": i,
                    "recheck_index": 0,
                    "reopen_count": 0,
                    "meta": {},
                }
            )
            links.append({"incident_id": i, "url_id": i, "added_at": T0})
            rungs.append(
                {
                    "incident_id": i,
                    "contact_id": net + 1,
                    "level": 1,
                    "role": "hosting",
                    "reason": "bench",
                    "language": "ja" if net % 7 == 0 else "en",
                    "confidence": 1.0,
                    "created_at": T0,
                }
            )
        with db.session() as s:
            for model, rows in (
                (Site, sites),
                (Url, urls),
                (Check, checks),
                (Incident, incs),
                (IncidentUrl, links),
                (Recipient, rungs),
            ):
                s.execute(insert(model), rows)
    if db.dialect == "postgresql":  # explicit ids: move the sequences past them
        with db.engine.begin() as conn:
            for table in ("campaigns", "contacts", "sites", "urls", "checks", "incidents"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )


def write_config(path: Path, tables: dict[str, dict[str, object]]) -> Path:
    from tocsin.sandbox.core import to_toml

    path.write_text(to_toml(tables), encoding="utf-8")
    return path


def run_notify(config: Path, workers: int, cwd: Path) -> float:
    """Run ``tocsin notify`` (``workers`` of them at once); wall seconds, and CPU to LAST_CPU."""
    command = [
        sys.executable,
        "-m",
        "tocsin",
        "-q",
        "--config",
        str(config),
        "--now",
        T0.isoformat(),
        "notify",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # User + system CPU of the notifiers and their render workers: what the run costs
    # whatever else the machine is doing (wall time depends on that).
    LAST_CPU[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if any(codes):
        raise SystemExit(f"tocsin notify failed: exit codes {codes}")
    return elapsed


def fresh_database(url: str | None, folder: Path, name: str) -> str:
    if url is None:
        url = f"sqlite:///{folder / (name + '.db')}"
    db = Database(url)
    if db.dialect == "postgresql":
        from store.models import Base

        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
            for table in reversed(Base.metadata.sorted_tables):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table.name}" CASCADE')
    migrate.upgrade(db)
    db.dispose()
    return url


def part_outbox(args: argparse.Namespace, folder: Path) -> None:
    url = fresh_database(args.database, folder, "outbox")
    db = Database(url)
    t = time.perf_counter()
    seed(db, args.incidents, args.recipients)
    if db.dialect == "postgresql":
        # A store that grew over days has planner statistics (autovacuum keeps them);
        # a freshly bulk-loaded one has none, and every IN (...) becomes a full scan.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    print(
        f"seeded {args.incidents:,} incidents for {args.recipients:,} recipients "
        f"in {time.perf_counter() - t:.1f} s"
    )
    config = write_config(
        folder / "outbox.toml",
        {
            "database": {"url": url},
            "notify": {
                "outbox_dir": str(folder / "outbox"),
                "rate_per_day": 0,
                "max_evidence_age": "3650d",
                "from_addr": "reports@tocsin.example",
                "workers": args.render_workers,
            },
            "board": {"base_url": "https://board.tocsin.example", "secret": "bench"},
        },
    )
    elapsed = run_notify(config, args.workers, folder)
    with db.session() as s:
        notices = s.scalar(select(func.count()).select_from(Notice))
        items = s.scalar(select(func.count()).select_from(NoticeItem))
    files = len(list((folder / "outbox" / "new").iterdir()))
    assert notices == files == args.recipients, (notices, files)
    assert items == args.incidents, items
    goal = "met" if elapsed <= 60 * args.incidents / 100_000 else "NOT met"
    print(
        f"outbox: {items:,} incidents in {notices:,} messages in {elapsed:.1f} s "
        f"({items / elapsed:,.0f} incidents/s, {notices / elapsed:,.0f} messages/s; "
        f"workers={args.workers}, render workers={args.render_workers}; "
        f"goal <= 60 s per 100,000: {goal}); CPU {LAST_CPU[0]:.1f} s "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


def part_smtp(args: argparse.Namespace, folder: Path) -> None:
    from tocsin.sandbox import Sandbox

    with Sandbox(folder / "sandbox") as sb:
        url = fresh_database(args.database, folder, "smtp")
        db = Database(url)
        seed(db, args.smtp_messages, args.smtp_messages)
        tables = sb.config_tables(url)
        tables["notify"].update(
            mode="smtp",
            rate_per_day=0,
            max_evidence_age="3650d",
            journal=str(folder / "journal.log"),
        )
        config = write_config(folder / "smtp.toml", tables)
        elapsed = run_notify(config, 1, folder)
        received = len(sb.smtp.messages)
    assert received == args.smtp_messages, received
    print(
        f"smtp: {received:,} messages to the sandbox relay in {elapsed:.1f} s "
        f"({received / elapsed:,.1f} messages/s, one connection, "
        "relay journal in the store: two commits per message)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--smtp-messages", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=1, help="notifier processes at once")
    parser.add_argument(
        "--render-workers", type=int, default=2, help="notify.workers of each notifier"
    )
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--skip-smtp", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-notify-") as tmp:
        folder = Path(tmp)
        part_outbox(args, folder)
        if not args.skip_smtp:
            part_smtp(args, folder)


if __name__ == "__main__":
    main()

"""MISP and STIX export of one big campaign: wall time and peak memory.

    .venv/bin/python bench/handoff.py                   # 1,000 incidents, SQLite in a temp folder
    .venv/bin/python bench/handoff.py --incidents 5000

Seeds one card-skimmer campaign of ``--incidents`` sites (one URL, one malicious check
with a page title, two IOCs out of 20 attacker hosts each, through the incident state
machine), then runs the real ``tocsin export --format misp --campaign big`` and
``--format stix`` as subprocesses and prints each one's wall time, output size and peak
RSS. The ``stix2`` library checks every indicator's pattern with its ANTLR parser; that is
most of the STIX time.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from store import migrate
from store.db import Database
from store.incidents import record_malicious
from store.models import Campaign, Check, Site, Url

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def seed(url: str, incidents: int) -> None:
    migrate.upgrade(Database(url))
    db = Database(url)
    with db.session() as s:
        camp = Campaign(name="big", family="card-skimmer", first_seen=T0, last_seen=T0, iocs={})
        s.add(camp)
        s.flush()
        for i in range(incidents):
            host = f"shop-{i}.example"
            ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            site = Site(host=host, registered_domain=host, ips=[ip], first_seen=T0)
            s.add(site)
            s.flush()
            text = f"http://{host}/checkout/"
            row = Url(url=text, url_hash=sha256(text.encode()).hexdigest(), host=host)
            row.site_id, row.verdict, row.family, row.rules = (
                site.id,
                "malicious",
                "card-skimmer",
                [],
            )
            row.first_seen = row.last_seen = T0
            s.add(row)
            s.flush()
            skim = f"skim{i % 20}.example"
            check = Check(url_id=row.id, kind="confirm", started_at=T0, finished_at=T0)
            check.route, check.verdict, check.family = "browser", "malicious", "card-skimmer"
            check.rules, check.evidence_lines, check.redirect_chain = [], [], []
            check.meta = {"browser": {"title": f"Shop {i}"}}
            check.iocs = {"domains": [skim], "urls": [f"https://{skim}/s.js"]}
            check.final_url = text
            s.add(check)
            s.flush()
            record_malicious(s, site=site, campaign=camp, url=row, check=check, now=T0)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=1000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tocsin-handoff-bench-"))
    url = f"sqlite:///{folder / 'tocsin.db'}"
    started = time.perf_counter()
    seed(url, args.incidents)
    print(f"seeded {args.incidents} incidents in {time.perf_counter() - started:.1f} s ({folder})")
    config = folder / "tocsin.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    for fmt in ("misp", "stix"):  # misp first: ru_maxrss of children is a running maximum
        started = time.perf_counter()
        command = [sys.executable, "-m", "tocsin", "--config", str(config), "export"]
        done = subprocess.run(
            [*command, "--format", fmt, "--campaign", "big"], capture_output=True, check=True
        )
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"export --format {fmt}: {wall:.1f} s, {len(done.stdout) / 1024:.0f} KiB, "
            f"peak RSS {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()

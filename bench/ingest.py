"""Benchmark `tocsin ingest` on a generated URLhaus CSV dump.

    .venv/bin/python bench/ingest.py                # 1,000,000 lines (goal: <= 60 s, <= 300 MB)
    .venv/bin/python bench/ingest.py --lines 50000  # a quick look

It writes a URLhaus-format CSV (banner, ``#`` header, every field quoted) with
a realistic mix: IP-hosted bot payloads, compromised WordPress sites, phishing
kits with query strings, IDN hosts, about 3 % duplicates (some differing only
in case or default port) and about 0.2 % bad lines. It then runs `tocsin
ingest` on it in a subprocess into a fresh SQLite file, and prints lines per
second, the child's peak RSS, and the ratio to a bare baseline in the same
run: ``csv.reader`` plus ``executemany`` of the same rows into SQLite, with no
normalisation, de-duplication or accounting.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = "id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter"
BANNER = """################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #
# Last updated: 2026-11-20 09:15:02 (UTC)                      #
#                                                              #
# Terms Of Use: https://urlhaus.abuse.ch/api/                  #
# For questions please contact urlhaus [at] abuse.ch           #
################################################################
#
"""
WORDS = [
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
]
TLDS = ["com", "net", "org", "de", "fr", "jp", "com.br", "co.uk", "example", "test"]
BINS = ["mozi.m", "mozi.a", "x86", "arm7", "mips", "bins.sh", "i", "Mozi.m"]
TAGS = ["elf,Mozi", "js,SocGholish", "zip,Emotet", "exe,AgentTesla", "apk", "skimmer", ""]
REPORTERS = ["anonymous", "lrz_urlhaus", "researcher_x", "abuse_ch", "Cryptolaemus1"]


def _url(rng: random.Random, i: int) -> str:
    kind = rng.random()
    if kind < 0.35:  # bot payloads on bare IPs
        ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{i % 250 + 1}"
        port = rng.choice(["", "", ":8080", ":80", ":4444"])
        return f"http://{ip}{port}/bins/{rng.choice(BINS)}"
    host = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}{i % 97_003}.{rng.choice(TLDS)}"
    if kind < 0.70:  # compromised WordPress
        plugin = rng.choice(["x", "wp-seo", "contact-form", "cache"])
        return f"https://{host}/wp-content/plugins/{plugin}/{i:x}/update.js"
    if kind < 0.95:  # phishing kits
        return f"https://www.{host}/secure/{i:x}/login.php?email=user{i % 1000}@example.com&id={i}"
    if kind < 0.98:  # IDN hosts
        return f"http://bücher-{i % 50_000}.example/dl/invoice{i}.zip"
    return f"http://{host.upper()}:80/Download/{i}.exe#frag"  # case and default port


def _bad(rng: random.Random, i: int) -> str:
    return rng.choice(
        [
            f'"{i}","2026-11-20 09:01:11","javascript:alert({i})","online","","x","","",""',
            f'"{i}","2026-11-20 09:01:11","","online","","x","","",""',
            f'"{i}","2026-11-20 09:01:11","http://broken-{i}.example/","online',
            f'"{i}","2026-11-20 09:01:11","http://a.example/' + "A" * 9000 + '","","","","","",""',
            f'"{i}","2026-11-20 09:01:11","http://nul\x00{i}.example/","","","","","",""',
        ]
    )


def generate(path: Path, lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    recent: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(BANNER + f"# {HEADER}\n")
        for i in range(lines):
            roll = rng.random()
            if roll < 0.002:
                out.write(_bad(rng, i) + "\n")
                continue
            if roll < 0.032 and recent:
                url = rng.choice(recent)
            else:
                url = _url(rng, i)
                if len(recent) < 5000:
                    recent.append(url)
                else:
                    recent[rng.randrange(5000)] = url
            fields = [
                str(4_000_000 - i),
                "2026-11-20 09:01:11",
                url,
                rng.choice(["online", "offline"]),
                rng.choice(["", "2026-11-20 09:01:11"]),
                "malware_download",
                rng.choice(TAGS),
                f"https://urlhaus.abuse.ch/url/{4_000_000 - i}/",
                rng.choice(REPORTERS),
            ]
            out.write(",".join(f'"{f}"' for f in fields) + "\n")


def run_tocsin(
    feed: Path, workdir: Path, database_url: str | None
) -> tuple[float, float, int, str]:
    url = database_url or f"sqlite:///{workdir / 'tocsin.db'}"
    config = workdir / "tocsin.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    base = [sys.executable, "-m", "tocsin", "--config", str(config), "-q"]
    init = subprocess.run([*base, "init"], capture_output=True, text=True, env=env, check=False)
    if init.returncode != 0:  # only `init` creates a store; its time is not the ingest's
        sys.exit(f"tocsin init failed ({init.returncode}):\n{init.stderr}")
    command = [*base, "ingest", str(feed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"tocsin ingest failed ({proc.returncode}):\n{proc.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = next((line for line in proc.stdout.splitlines() if " new, " in line), "")
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, usage.ru_maxrss, summary


def run_baseline(feed: Path, workdir: Path, batch: int = 5000) -> float:
    """csv.reader + executemany of the same rows: the floor for any ingest."""
    started = time.perf_counter()
    db = sqlite3.connect(workdir / "baseline.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("create table rows (line integer, url text, raw text)")
    with feed.open(encoding="utf-8", errors="replace", newline="") as f:
        rows: list[tuple[int, str, str]] = []
        for n, row in enumerate(csv.reader(f)):
            if row and not row[0].startswith("#") and len(row) > 2:
                rows.append((n, row[2], ",".join(row)))
            if len(rows) >= batch:
                db.executemany("insert into rows values (?, ?, ?)", rows)
                db.commit()
                rows.clear()
        db.executemany("insert into rows values (?, ?, ?)", rows)
        db.commit()
    db.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database", help="a database URL instead of a fresh SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    feed = workdir / "urlhaus.csv"
    started = time.perf_counter()
    generate(feed, args.lines)
    print(
        f"generated {args.lines:,} lines ({feed.stat().st_size / 1e6:.0f} MB) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    elapsed, cpu, peak_kib, summary = run_tocsin(feed, workdir, args.database)
    print(
        f"tocsin ingest: {elapsed:.1f} s, {args.lines / elapsed:,.0f} lines/s, "
        f"peak RSS {peak_kib / 1024:.0f} MB, CPU {cpu:.1f} s  ({summary})"
    )
    baseline = run_baseline(feed, workdir)
    print(
        f"baseline (csv + executemany): {baseline:.1f} s, "
        f"{args.lines / baseline:,.0f} lines/s; tocsin takes {elapsed / baseline:.1f}x"
    )
    if args.keep:
        print(f"kept {workdir}")
    else:
        for child in workdir.iterdir():
            child.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()

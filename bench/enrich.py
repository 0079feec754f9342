"""Enrichment benchmarks (issue 4): ASN lookups and RDAP-cached enrichment at scale.

Prints, in one run:

1. ASN lookups per second over N random IPv4 addresses (default 1,000,000) with
   ``enrich.asn.AsnDb.lookup`` (ASN, prefix and AS name), as a ratio to raw
   ``pyasn.pyasn.lookup`` on the same addresses in the same run (goal >= 0.5);
2. the rate relative to IntelMQ's ASN-lookup expert (``intelmq`` from PyPI, the
   ``bench`` extra): its real ``process()`` on one Event per address (a sample,
   as it is far slower; its per-event rate is extrapolated);
3. for S sandbox sites (default 10,000, spread over a few hundred addresses as
   the sandbox lays them out): the wall time of ``enrich_sites`` (DNS, pyasn,
   RDAP, security.txt through the guarded fetcher, contacts, ladders) and the
   RDAP cache hit ratio (goal: <= 60 s).

Full scale (the lead, on a quiet machine):
    .venv/bin/python bench/enrich.py
Small scale (a smoke run):
    .venv/bin/python bench/enrich.py --ips 100000 --sites 300 --intelmq-sample 2000
Options: --db URL (default: a SQLite file in a temporary folder), --no-securitytxt,
--sites-only (the site enrichment alone, without the ASN and IntelMQ parts),
--ipasn PATH and --asnames PATH: the tables of the ASN part. The default is the
repository's subset (tests/data/asn: 120,015 of the 2014 table's 512,621 prefixes);
the figures in docs/benchmarks.md were taken on the full table, which pyasn
publishes (data/ipasn_20140513.dat.gz) or ``tocsin asn update`` builds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO / "tests" / "data" / "asn"  # a subset: see tests/data/README.md
IPASN = DATA / "ipasn_20140513.dat.gz"
ASNAMES = DATA / "asnames.json.gz"


def random_ips(n: int, seed: int = 4) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(n)
    ]


def bench_asn(
    n: int, intelmq_sample: int, ipasn: Path = IPASN, asnames: Path = ASNAMES
) -> dict[str, float | None]:
    import pyasn

    from enrich.asn import AsnDb
    from tocsin.config import AsnConfig

    ips = random_ips(n)
    raw = pyasn.pyasn(str(ipasn))
    ours = AsnDb.from_config(AsnConfig(ipasn_db=str(ipasn), asnames=str(asnames)))
    best_raw = best_ours = float("inf")
    for _ in range(3):  # interleaved, best of three: the machine is shared
        start = time.perf_counter()
        lookup = raw.lookup
        for ip in ips:
            lookup(ip)
        best_raw = min(best_raw, time.perf_counter() - start)
        start = time.perf_counter()
        lookup = ours.lookup
        for ip in ips:
            lookup(ip)
        best_ours = min(best_ours, time.perf_counter() - start)
    result: dict[str, float | None] = {
        "ips": n,
        "table": str(ipasn),
        "prefixes": len(raw.radix.prefixes()),
        "raw_pyasn_per_s": n / best_raw,
        "tocsin_per_s": n / best_ours,
        "ratio_to_raw": best_raw / best_ours,
        "intelmq_per_s": None,
        "ratio_to_intelmq": None,
    }
    try:
        rate = intelmq_rate(ips[:intelmq_sample], ipasn)
    except ImportError as exc:
        print(f"  (IntelMQ not installed: pip install -e '.[bench]'; {exc})", file=sys.stderr)
    else:
        result["intelmq_per_s"] = rate
        result["ratio_to_intelmq"] = result["tocsin_per_s"] / rate
    return result


def intelmq_rate(ips: list[str], ipasn: Path) -> float:
    """IntelMQ's ASN-lookup expert, its own ``process()`` per event, pipeline stubbed out."""
    import logging

    import intelmq
    import pyasn
    from intelmq.bots.experts.asn_lookup.expert import ASNLookupExpertBot
    from intelmq.lib.message import Event

    logging.getLogger("intelmq").setLevel(logging.ERROR)
    harmonization = json.loads(
        (Path(intelmq.__file__).parent / "etc" / "harmonization.conf").read_text()
    )
    bot = object.__new__(ASNLookupExpertBot)  # no IntelMQ runtime: only its processing
    bot._database = pyasn.pyasn(str(ipasn))
    box: dict[str, Event] = {}
    bot.receive_message = lambda: box["in"]
    bot.send_message = lambda event: box.__setitem__("out", event)
    bot.acknowledge_message = lambda: None
    start = time.perf_counter()
    for ip in ips:
        box["in"] = Event({"source.ip": ip}, harmonization=harmonization)
        bot.process()
    return len(ips) / (time.perf_counter() - start)


def bench_sites(count: int, db_url: str | None, securitytxt: bool) -> dict[str, Any]:
    import hashlib

    from bench.sandbox_proc import SandboxProcess
    from enrich.service import enrich_sites
    from store import migrate
    from store.db import Database
    from store.models import Campaign, Incident, Site, Url
    from tocsin.app import App
    from tocsin.clock import Clock
    from tocsin.config import Config

    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-enrich-"))
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    # The sandbox runs in a child process, as real servers would: in this process its
    # threads would compete with tocsin for the GIL.
    with SandboxProcess(workdir / "sandbox", scale=count, mix={"page": 1.0}) as sandbox:
        sites = [s for s in sandbox.sites if s["ip"]]
        tables = sandbox.config_tables("sqlite://")
        url = db_url or f"sqlite:///{workdir / 'tocsin.db'}"
        tables["database"] = {"url": url}
        tables.setdefault("enrich", {})["securitytxt"] = securitytxt
        tables.setdefault("rdap", {}).update({"rate_per_server": 1000.0, "concurrency": 32})
        for unused in ("smtp", "notify", "board", "evidence", "signatures", "browser"):
            tables.pop(unused, None)
        config = Config.model_validate(tables)
        db = Database(url)
        migrate.upgrade(db)
        with db.session() as session:
            campaign = Campaign(
                name="bench", family="injected-script", first_seen=now, last_seen=now
            )
            session.add(campaign)
            session.flush()
            for spec in sites:
                site = Site(host=spec["host"], first_seen=now, meta={})
                session.add(site)
                session.flush()
                link = spec["url"]
                session.add(
                    Url(url=link, url_hash=hashlib.sha256(link.encode()).hexdigest(),
                        host=spec["host"], site_id=site.id, verdict="malicious",
                        first_seen=now, last_seen=now)
                )  # fmt: skip
                session.add(
                    Incident(public_id=f"B-{site.id}", site_id=site.id, campaign_id=campaign.id,
                             first_seen=now, last_confirmed=now, meta={})
                )  # fmt: skip
        app = App(preset=config, clock=Clock(now))
        start = time.perf_counter()
        summary = enrich_sites(app)
        wall = time.perf_counter() - start
    return {
        "sites": summary.sites,
        "done": summary.done,
        "partial": summary.partial,
        "wall_s": wall,
        "sites_per_s": summary.sites / wall if wall else None,
        "rdap_queries": summary.rdap_queries,
        "cache_hit_ratio": summary.cache_hit_ratio,
        "phases": {k: round(v, 1) for k, v in summary.seconds.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ips", type=int, default=1_000_000)
    parser.add_argument("--intelmq-sample", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--db", help="database URL for the site benchmark")
    parser.add_argument("--no-securitytxt", action="store_true")
    parser.add_argument("--ipasn", type=Path, default=IPASN, help="pyasn IPv4 table")
    parser.add_argument("--asnames", type=Path, default=ASNAMES, help="pyasn AS-names JSON")
    parser.add_argument(
        "--sites-only", action="store_true", help="skip the ASN-lookup and IntelMQ parts"
    )
    args = parser.parse_args()
    for path in (args.ipasn, args.asnames):
        if not path.is_file():
            parser.error(f"no such file: {path}")

    if not args.sites_only:
        asn = bench_asn(args.ips, args.intelmq_sample, args.ipasn, args.asnames)
        print_asn(asn, args.intelmq_sample)
    sites = bench_sites(args.sites, args.db, not args.no_securitytxt)
    print_sites(sites)


def print_asn(asn: dict[str, Any], intelmq_sample: int) -> None:
    print(f"ASN lookups, {asn['ips']:,} random IPv4 addresses, {asn['prefixes']:,} prefixes")
    print(f"  ({asn['table']})")
    print(f"  raw pyasn           {asn['raw_pyasn_per_s']:>12,.0f} /s")
    ours, ratio = asn["tocsin_per_s"], asn["ratio_to_raw"]
    print(f"  tocsin AsnDb        {ours:>12,.0f} /s   ratio {ratio:.2f}  (goal >= 0.5)")
    if asn["intelmq_per_s"]:
        theirs, times = asn["intelmq_per_s"], asn["ratio_to_intelmq"]
        sample = f"{intelmq_sample:,}-event sample"
        print(f"  IntelMQ asn_lookup  {theirs:>12,.0f} /s   tocsin is {times:.0f}x  ({sample})")


def print_sites(sites: dict[str, Any]) -> None:
    print(f"Enrichment of {sites['sites']:,} sandbox sites:")
    print(f"  wall time           {sites['wall_s']:>10.1f} s  (goal <= 60 s)"
          f"   {sites['sites_per_s']:.0f} sites/s")  # fmt: skip
    ratio = sites["cache_hit_ratio"]
    print(f"  RDAP queries        {sites['rdap_queries']:>10,}")
    print(f"  RDAP cache hits     {'-' if ratio is None else f'{ratio:.1%}':>10}")
    print(f"  done / partial      {sites['done']:>6} / {sites['partial']}")
    print(f"  seconds by phase    {sites['phases']}")


if __name__ == "__main__":
    main()

"""Rebuild this folder's pyasn tables from the full ones (run by hand, not by the tests).

The full 2014 IPv4 table (512,621 prefixes) and 2015 v4+v6 table weigh 4.3 MB,
too much to keep in the repository. This keeps a faithful subset, so every
answer the subset gives is the answer the full table gives for the same
address or no answer:

- every prefix that covers an address written in ``tests/`` or ``bench/``
  (each one's whole chain of covering prefixes, so longest-prefix match is
  unchanged for them);
- a random sample of the other IPv4 prefixes (``--sample``, seeded);
- every IPv6 prefix of the v6 table (its IPv4 half is dropped: the v4 table
  answers IPv4);
- the AS names of every ASN left in the tables.

Usage::

    python tests/data/asn/make_subset.py FULL_V4.dat.gz FULL_V6.dat.gz ASNAMES.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
V4_LITERAL = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
V6_LITERAL = re.compile(r"\b[0-9a-f]{1,4}:[0-9a-f]{0,4}:[0-9a-f:]*\b", re.IGNORECASE)


def _table(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Header comment lines and (prefix, asn) rows of a pyasn IPASN file."""
    header: list[str] = []
    rows: list[tuple[str, str]] = []
    with gzip.open(path, "rt", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(";"):
                header.append(line.rstrip("\n"))
            elif line.strip():
                prefix, asn = line.split()
                rows.append((prefix, asn))
    return header, rows


def _addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IP address literal in the tests and benchmarks."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for folder in ("tests", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for literal in V4_LITERAL.findall(text) + V6_LITERAL.findall(text):
                try:
                    found.add(ipaddress.ip_address(literal))
                except ValueError:
                    continue
    return sorted(found, key=lambda a: (a.version, int(a)))


def _covering(rows: list[tuple[str, str]], addresses: list) -> set[str]:
    """The prefixes of ``rows`` that hold one of ``addresses`` (all lengths, not just the best)."""
    present = {p for p, _ in rows}
    return {
        str(net)
        for a in addresses
        for length in range(a.max_prefixlen + 1)
        if str(net := ipaddress.ip_network((a, length), strict=False)) in present
    }


def _write(path: Path, header: list[str], rows: list[tuple[str, str]], note: str) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as raw:  # mtime 0: the same bytes every run
        raw.write("\n".join([*header, f"; {note}", *(f"{p}\t{a}" for p, a in rows), ""]).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("v4", type=Path)
    parser.add_argument("v6", type=Path)
    parser.add_argument("asnames", type=Path)
    parser.add_argument("--sample", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    addresses = _addresses()
    head4, rows4 = _table(args.v4)
    keep = _covering(rows4, addresses)
    others = [p for p, _ in rows4 if p not in keep]
    keep |= set(random.Random(args.seed).sample(others, min(args.sample, len(others))))
    sub4 = [(p, a) for p, a in rows4 if p in keep]  # the original order
    head6, rows6 = _table(args.v6)
    sub6 = [(p, a) for p, a in rows6 if ":" in p]
    note = f"tocsin subset: {len(sub4)} of {len(rows4)} IPv4 prefixes (seed {args.seed})"
    _write(HERE / args.v4.name, head4, sub4, note)
    _write(HERE / args.v6.name, head6, sub6, f"tocsin subset: the {len(sub6)} IPv6 prefixes")

    with gzip.open(args.asnames, "rt", encoding="utf-8") as handle:
        names = json.load(handle)
    used = {a for _, a in sub4 + sub6}
    kept = {k: v for k, v in names.items() if k in used}
    with gzip.GzipFile(HERE / args.asnames.name, "wb", mtime=0) as raw:
        raw.write(json.dumps(kept, separators=(",", ":"), sort_keys=True).encode())
    print(f"{len(addresses)} addresses from tests/bench, {len(sub4)} v4, {len(sub6)} v6 prefixes,")
    print(f"{len(kept)} of {len(names)} AS names")


if __name__ == "__main__":
    main()

"""ASN, BGP prefix and AS name of an address, offline, with pyasn.

``asn.ipasn_db`` is the IPv4 table (a RouteViews RIB converted by pyasn);
``asn.ipasn6_db``, when set, answers IPv6 addresses. A table built from a mixed
v4/v6 RIB answers both. ``tocsin asn update`` builds fresh tables: see
:func:`convert_rib`, which reads the MRT dump record by record so a truncated
download still yields every complete record before the cut.
"""

from __future__ import annotations

import gzip
import json
import logging
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import pyasn
from pyasn import mrtx

from tocsin.config import AsnConfig
from tocsin.errors import ConfigError, EnrichError

log = logging.getLogger(__name__)
_SHARED: dict[tuple, AsnDb] = {}
_SHARED_LOCK = threading.Lock()


class AsnInfo(NamedTuple):
    """Where an address is routed from (a tuple: cheap to build a million of)."""

    asn: int | None
    prefix: str | None
    as_name: str | None


NO_ASN = AsnInfo(None, None, None)
_new_tuple = tuple.__new__  # builds an AsnInfo without NamedTuple's Python-level __new__


def _open_table(path: str, key: str) -> pyasn.pyasn:
    if not Path(path).is_file():
        raise ConfigError(key, f"no such file: {path}")
    try:
        return pyasn.pyasn(path)
    except Exception as exc:  # pyasn raises bare Exceptions on bad input
        raise ConfigError(key, f"not a pyasn IPASN file: {exc}") from None


def load_asnames(path: str) -> dict[int, str]:
    """Read pyasn's AS-names JSON (``{"15169": "GOOGLE - Google Inc., US"}``), plain or gzip."""
    if not Path(path).is_file():
        raise ConfigError("asn.asnames", f"no such file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            raw = json.load(handle)
        return {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError("asn.asnames", f"not an AS-names JSON file: {exc}") from None


class AsnDb:
    """Longest-prefix match over the configured tables; thread-safe for lookups.

    ``lookup`` stays a thin layer over pyasn's radix tree (the benchmark holds
    it to at least half of raw pyasn's rate): one family test, one C call, one
    dict lookup.
    """

    def __init__(
        self,
        v4: pyasn.pyasn | None,
        v6: pyasn.pyasn | None = None,
        names: dict[int, str] | None = None,
    ) -> None:
        self._v4 = v4
        self._v6 = v6 or v4
        self._v4_radix = v4.radix if v4 is not None else None
        self._v6_radix = self._v6.radix if self._v6 is not None else None
        # bound once: lookup() runs a million times in the benchmark
        self._search4 = self._v4_radix.search_best if self._v4_radix is not None else None
        self._search6 = self._v6_radix.search_best if self._v6_radix is not None else None
        self.names = names or {}
        self._name_of = self.names.get

    @classmethod
    def from_config(cls, config: AsnConfig) -> AsnDb:
        v4 = _open_table(config.ipasn_db, "asn.ipasn_db") if config.ipasn_db else None
        v6 = _open_table(config.ipasn6_db, "asn.ipasn6_db") if config.ipasn6_db else None
        names = load_asnames(config.asnames) if config.asnames else {}
        if v4 is None and v6 is None:
            log.warning("asn.ipasn_db is not set: sites get no ASN or prefix")
        return cls(v4, v6, names)

    @classmethod
    def shared(cls, config: AsnConfig) -> AsnDb:
        """One loaded copy per process and set of files (tables take a second to load)."""
        key = tuple(
            (path, Path(path).stat().st_mtime_ns if path and Path(path).is_file() else None)
            for path in (config.ipasn_db, config.ipasn6_db, config.asnames)
        )
        with _SHARED_LOCK:
            db = _SHARED.get(key)
            if db is None:
                db = cls.from_config(config)
                _SHARED.clear()  # keep only the current tables
                _SHARED[key] = db
            return db

    @property
    def available(self) -> bool:
        return self._v4_radix is not None or self._v6_radix is not None

    def lookup(self, address: str) -> AsnInfo:
        """ASN, most specific announced prefix and AS name; ``NO_ASN`` when unrouted."""
        search = self._search6 if ":" in address else self._search4
        if search is None:
            return NO_ASN
        try:
            node = search(address)
        except ValueError:  # not an address of that family
            return NO_ASN
        if node is None:
            return NO_ASN
        asn = node.asn
        return _new_tuple(AsnInfo, (asn, node.prefix, self._name_of(asn)))

    def as_name(self, asn: int | None) -> str | None:
        return None if asn is None else self.names.get(asn)


# --- building tables from RouteViews RIB dumps ------------------------------------------


@dataclass
class ConversionReport:
    """What :func:`convert_rib` read: records, prefixes, and whether the input was cut short."""

    records: int = 0
    prefixes_v4: int = 0
    prefixes_v6: int = 0
    truncated: bool = False
    problem: str | None = None


def _records(stream: IO[bytes], report: ConversionReport) -> Iterator[mrtx.MrtRecord]:
    """MRT records one by one; stops cleanly where the input ends mid-record.

    pyasn's ``parse_mrt_file`` reads the same way but treats a cut as a crash
    (an ``AssertionError`` or bz2's ``EOFError``); a download that stopped early
    still holds every record before the cut, so we keep those and report it.
    """
    while True:
        try:
            record = mrtx.MrtRecord.next_dump_table_record(stream)
        except (EOFError, AssertionError, struct.error) as exc:
            report.truncated = True
            report.problem = f"input ends mid-record after {report.records} records ({exc})"
            return
        except OSError as exc:  # a corrupt compressed stream
            report.truncated = True
            report.problem = f"unreadable after {report.records} records: {exc}"
            return
        if record is None:
            return
        report.records += 1
        yield record


def parse_rib(path: str | Path) -> tuple[dict[str, int | set[int]], ConversionReport]:
    """Prefix -> origin AS (a set for AS_SET origins) from a ``.bz2``/``.gz`` MRT RIB dump."""
    report = ConversionReport()
    prefixes: dict[str, int | set[int]] = {}
    try:
        stream = mrtx.open_archive(str(path))
    except (OSError, TypeError) as exc:
        raise EnrichError(f"{path}: not a bz2 or gzip MRT archive ({exc})") from None
    with stream:
        for record in _records(stream, report):
            if not record.detail or (
                record.type == record.TYPE_TABLE_DUMP_V2
                and record.sub_type == mrtx.MrtRecord.T2_PEER_INDEX
            ):
                continue
            prefix = record.prefix
            if prefix in prefixes:
                continue  # pyasn's rule: the first entry of a repeated prefix wins
            try:
                prefixes[prefix] = record.get_first_origin_as()
            except Exception:  # a malformed AS path in one record: skip that record
                log.debug("no origin AS for %s", prefix)
    for default in ("0.0.0.0/0", "::/0"):
        prefixes.pop(default, None)
    report.prefixes_v6 = sum(":" in p for p in prefixes)
    report.prefixes_v4 = len(prefixes) - report.prefixes_v6
    return prefixes, report


def write_ipasn(
    prefixes: dict[str, int | set[int]], out: str | Path, source: str, *, only: int | None = None
) -> int:
    """Write a pyasn IPASN file (gzip when ``out`` ends in ``.gz``); ``only`` 4 or 6 filters.

    An AS_SET origin is written as its lowest ASN, so the output is reproducible
    (pyasn's own writer picks an arbitrary member).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    opener = gzip.open if out.name.endswith(".gz") else open
    count = 0
    with opener(tmp, "wt", encoding="ascii") as handle:
        handle.write(f"; IP-ASN32-DAT file\n; Original source: {source}\n")
        for prefix, origin in prefixes.items():
            family = 6 if ":" in prefix else 4
            if only is not None and family != only:
                continue
            asn = min(origin) if isinstance(origin, set) else origin
            handle.write(f"{prefix}\t{asn}\n")
            count += 1
    tmp.replace(out)  # readers never see a half-written table
    return count


def convert_rib(rib: str | Path, out: str | Path, *, only: int | None = None) -> ConversionReport:
    """Convert a RIB dump to an IPASN table (``only`` 4 or 6 keeps one family)."""
    prefixes, report = parse_rib(rib)
    if not prefixes:
        raise EnrichError(f"{rib}: no prefixes could be read ({report.problem or 'empty'})")
    write_ipasn(prefixes, out, Path(rib).name, only=only)
    return report

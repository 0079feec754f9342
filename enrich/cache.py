"""The RDAP cache (``rdap_cache`` rows): per network, per domain, per registrar.

A network is cached under its first CIDR and found again by longest-prefix
match over every CIDR it holds (pyasn's C radix tree), so the second site on
a /24 costs no query. A domain is cached under its registered domain; a
registrar under its IANA id (or handle), which fills in the abuse desk when a
domain answer lacks it. Negative answers (404, no RDAP service) are cached for
``rdap.negative_ttl``; transient failures are never cached.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta
from typing import Any

from pyasn.pyasn_radix import Radix
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from enrich.rdap import NetworkInfo, Outcome, RegistrarInfo
from store.db import Database
from store.models import RdapCache
from tocsin.config import RdapConfig

log = logging.getLogger(__name__)

NEGATIVE = "negative"  # a cached "nothing there"


class RdapCacheStore:
    """One run's view of the cache: loaded once, updated as answers come in."""

    def __init__(self, db: Database, config: RdapConfig, now: datetime) -> None:
        self.db = db
        self.config = config
        self.now = now
        self._radix = Radix()
        self._networks: list[NetworkInfo] = []
        self._negative_ips: set[str] = set()
        self._domains: dict[str, RegistrarInfo | str] = {}
        self._registrars: dict[str, RegistrarInfo] = {}
        self.hits = 0
        self.misses = 0
        self._loaded = False

    # loading

    def load(self) -> None:
        """Read every live network and registrar entry (bounded by the number of networks)."""
        if self._loaded:
            return
        self._loaded = True
        with self.db.session() as session:
            rows = session.execute(
                select(RdapCache.key, RdapCache.kind, RdapCache.negative, RdapCache.data).where(
                    RdapCache.kind.in_(("ip", "registrar")), RdapCache.expires_at > self.now
                )
            )
            for key, kind, negative, data in rows:
                if kind == "registrar" and data:
                    self._registrars[key.split(":", 1)[1]] = RegistrarInfo.from_dict(data)
                elif negative:
                    self._negative_ips.add(key.split(":", 1)[1])
                elif data:
                    self._index(NetworkInfo.from_dict(data), key.split(":", 1)[1])

    def prefetch_domains(self, domains: list[str]) -> None:
        wanted = [d for d in dict.fromkeys(domains) if d and d not in self._domains]
        if not wanted:
            return
        with self.db.session() as session:
            for start in range(0, len(wanted), 500):
                keys = [f"domain:{d}" for d in wanted[start : start + 500]]
                rows = session.execute(
                    select(RdapCache.key, RdapCache.negative, RdapCache.data).where(
                        RdapCache.key.in_(keys), RdapCache.expires_at > self.now
                    )
                )
                for key, negative, data in rows:
                    domain = key.split(":", 1)[1]
                    self._domains[domain] = (
                        NEGATIVE if negative or not data else RegistrarInfo.from_dict(data)
                    )

    def _index(self, network: NetworkInfo, fallback: str) -> None:
        position = len(self._networks)
        self._networks.append(network)
        for cidr in network.cidrs or [fallback]:
            address, _, length = cidr.partition("/")
            try:
                bits = int(length) if length else (128 if ":" in address else 32)
                node = self._radix.add(address, bits)
            except (ValueError, TypeError):
                continue
            node.asn = position

    # lookups (count hits and misses)

    def network(self, address: str, *, count: bool = True) -> NetworkInfo | str | None:
        """The cached network holding ``address``, ``NEGATIVE``, or None (ask RDAP)."""
        found: NetworkInfo | str | None = None
        if address in self._negative_ips:
            found = NEGATIVE
        else:
            try:
                node = self._radix.search_best(address)
            except ValueError:
                node = None
            if node is not None:
                found = self._networks[node.asn]
        if count:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def domain(self, domain: str, *, count: bool = True) -> RegistrarInfo | str | None:
        found = self._domains.get(domain)
        if count:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def registrar(self, info: RegistrarInfo) -> RegistrarInfo | None:
        key = info.iana_id or info.handle
        return self._registrars.get(key) if key else None

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total

    # remembering

    def remember(self, outcomes: list[Outcome]) -> None:
        """Keep answers and negative answers, in memory and in the store; skip failures."""
        rows: list[dict[str, Any]] = []
        ttl = self.config.cache_ttl
        neg_ttl = self.config.negative_ttl
        for outcome in outcomes:
            if not outcome.ok or outcome.from_cache:
                continue
            if outcome.kind == "ip":
                if outcome.negative or not isinstance(outcome.result, NetworkInfo):
                    self._negative_ips.add(outcome.key)
                    rows.append(self._row("ip", outcome.key, None, outcome.server, neg_ttl))
                    continue
                network = outcome.result
                if network.abuse_gap:  # its abuse desk is still to be found: ask again
                    continue
                key = (network.cidrs[0] if network.cidrs else outcome.key)[:240]
                self._index(network, outcome.key)
                if not _holds(network, outcome.key):  # a sloppy answer: remember the address
                    self._index(NetworkInfo(**{**network.to_dict(), "cidrs": []}), outcome.key)
                # no abuse desk anywhere: kept only as long as a negative answer
                keep = ttl if network.abuse_email else neg_ttl
                rows.append(self._row("ip", key, network.to_dict(), outcome.server, keep))
            else:
                if outcome.negative or not isinstance(outcome.result, RegistrarInfo):
                    self._domains[outcome.key] = NEGATIVE
                    rows.append(self._row("domain", outcome.key, None, outcome.server, neg_ttl))
                    continue
                info = outcome.result
                self._domains[outcome.key] = info
                rows.append(self._row("domain", outcome.key, info.to_dict(), outcome.server, ttl))
                registrar_key = info.iana_id or info.handle
                if registrar_key and info.abuse_email:
                    known = self._registrars.get(registrar_key)
                    if known is None or (info.abuse_from == "abuse" != known.abuse_from):
                        generic = RegistrarInfo(**{**info.to_dict(), "domain": ""})
                        self._registrars[registrar_key] = generic
                        rows.append(
                            self._row(
                                "registrar", registrar_key, generic.to_dict(), outcome.server, ttl
                            )
                        )
        if rows:
            self._write(rows)

    def _row(
        self, kind: str, key: str, data: dict[str, Any] | None, server: str, ttl: timedelta
    ) -> dict[str, Any]:
        return {
            "key": f"{kind}:{key}"[:255],
            "kind": kind,
            "server": (server or None) and server[:255],
            "negative": data is None,
            "data": data,
            "fetched_at": self.now,
            "expires_at": self.now + ttl,
        }

    def _write(self, rows: list[dict[str, Any]]) -> None:
        latest = {row["key"]: row for row in rows}
        with self.db.claim() as session:  # a writer: waits out the busy timeout on SQLite
            self._upsert(session, list(latest.values()))

    @staticmethod
    def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
        """One INSERT ... ON CONFLICT (key) DO UPDATE per chunk on SQLite and PostgreSQL
        (the per-row ORM path with a savepoint each cost more than the RDAP queries)."""
        dialect = session.get_bind().dialect.name
        if dialect in ("sqlite", "postgresql"):
            module = sqlite if dialect == "sqlite" else postgresql
            table = RdapCache.__table__
            for start in range(0, len(rows), 500):
                statement = module.insert(table).values(rows[start : start + 500])
                statement = statement.on_conflict_do_update(
                    index_elements=[table.c.key],
                    set_={
                        name: statement.excluded[name]
                        for name in ("kind", "server", "negative", "data", "fetched_at",
                                     "expires_at")
                    },
                )  # fmt: skip
                session.execute(statement)
            return
        existing = {
            entry.key: entry
            for entry in session.scalars(
                select(RdapCache).where(RdapCache.key.in_([r["key"] for r in rows]))
            )
        }
        for row in rows:
            entry = existing.get(row["key"])
            if entry is not None:
                for name, value in row.items():
                    setattr(entry, name, value)
                continue
            try:
                with session.begin_nested():  # another process may have written it meanwhile
                    session.add(RdapCache(**row))
            except IntegrityError:
                log.debug("rdap cache %s written concurrently", row["key"])


def _holds(network: NetworkInfo, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(
            ip.version == net.version and ip in net
            for net in (ipaddress.ip_network(c, strict=False) for c in network.cidrs)
        )
    except ValueError:
        return False

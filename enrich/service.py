"""Enrichment, end to end: from a confirmed site to its ladder of people to tell.

For each site: DNS (A/AAAA, CNAME chain, hosts file first) -> pyasn (ASN,
prefix, AS name) -> RDAP (each network's abuse desk, holder and country; the
registered domain's registrar) -> security.txt (the owner's own contact) ->
``Contact`` and ``SiteContact`` rows -> a ladder of ``Recipient`` rows for each
of the site's open incidents, with languages.

What a run cannot learn (a rate-limited or down RDAP server, an unreachable
security.txt) is recorded as a gap; the site ends ``partial`` with a
``next_enrich_at``, and a later run fills the gap. A site is never dropped.

Entry points:

- :func:`enrich_sites` (``tocsin enrich``, the notifier's re-enrichment of a site
  that moved host): ``enrich_sites(app, site_ids=None)``; None means every site
  that is due.
- :class:`Enricher`, for callers that bring their own security.txt fetcher (the
  Scrapy item pipeline fetches through the running crawl's engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any

import tldextract
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from enrich.asn import AsnDb, AsnInfo
from enrich.cache import NEGATIVE, RdapCacheStore
from enrich.csirt import Csirt, load_cert_contacts
from enrich.dns import HostAddresses, resolve_many
from enrich.language import cctld_country
from enrich.origin import note_origins
from enrich.policy import Candidate, Rung, SiteContext, build_ladder, roles_in
from enrich.providers import Match, ProviderPatterns
from enrich.rdap import NetworkInfo, Outcome, RdapClient, RegistrarInfo
from enrich.securitytxt import (
    Fetched,
    SecurityTxt,
    candidate_urls,
    parse,
    rfc2142_guesses,
)
from store import eventlog
from store.evidence import EvidenceStore
from store.incidents import OPEN_STATES
from store.models import Contact, Incident, Recipient, Site, SiteContact, Url
from tocsin.config import Config
from tocsin.net.resolver import Resolver

log = logging.getLogger(__name__)

# A fetcher gets (site id, host, candidate URLs) and returns what it found per site.
SecurityTxtFetcher = Callable[[list[tuple[int, str, list[str]]]], dict[int, Fetched]]

MAX_BACKOFF = timedelta(days=1)
PREFETCH = 1000  # sites whose security.txt one fetcher call fetches
_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled PSL, offline


def registered_domain(host: str) -> str | None:
    """The registrable domain under the public suffix (``www.shop.co.jp`` -> ``shop.co.jp``)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    result = _TLD(host)
    return result.top_domain_under_public_suffix or None


# --- results ----------------------------------------------------------------------------------


@dataclass
class SiteReport:
    site_id: int
    host: str
    state: str  # done | partial
    gaps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class EnrichSummary:
    """What a run did, for the closing table and the exit code."""

    sites: int = 0
    done: int = 0
    partial: int = 0
    contacts: Counter[str] = field(default_factory=Counter)  # role/source -> sites
    gaps: Counter[str] = field(default_factory=Counter)
    rdap_queries: int = 0
    rdap_hits: int = 0
    rdap_misses: int = 0
    recipients: int = 0
    incidents: int = 0
    partial_sites: list[SiteReport] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)  # per phase, for benchmarks

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.rdap_hits + self.rdap_misses
        return None if total == 0 else self.rdap_hits / total

    def add(self, report: SiteReport) -> None:
        self.sites += 1
        if report.state == "done":
            self.done += 1
        else:
            self.partial += 1
            self.partial_sites.append(report)
        self.gaps.update(report.gaps)


# --- one site's facts, gathered before anything is written --------------------------------------


@dataclass
class _Facts:
    site_id: int
    host: str
    registered_domain: str | None
    old_ips: list[str]
    origins: list[str]
    dns: HostAddresses | None = None
    asn: dict[str, AsnInfo] = field(default_factory=dict)
    networks: dict[str, NetworkInfo | str | None] = field(default_factory=dict)  # ip -> info
    network_errors: dict[str, Outcome] = field(default_factory=dict)
    registrar: RegistrarInfo | str | None = None
    registrar_error: Outcome | None = None
    securitytxt: SecurityTxt | None = None
    securitytxt_state: str = "skipped"  # found | expired | absent | error | skipped
    securitytxt_detail: str = ""

    @property
    def ips(self) -> list[str]:
        return list(self.dns.addresses) if self.dns else []


@dataclass
class _Plan:
    site: Site
    fact: _Facts
    moved: bool
    wanted: dict[str, list[dict[str, Any]]]
    context: SiteContext
    report: SiteReport


@dataclass
class _Batch:
    """One batch's rows, loaded up front so writing a site needs no query of its own."""

    sites: dict[int, Site] = field(default_factory=dict)
    links: dict[int, list[SiteContact]] = field(default_factory=dict)
    incidents: dict[int, list[Incident]] = field(default_factory=dict)
    recipients: dict[int, list[Recipient]] = field(default_factory=dict)
    contacts: dict[tuple[str, str], Contact] = field(default_factory=dict)
    by_id: dict[int, Contact] = field(default_factory=dict)


class Enricher:
    """One enrichment run's shared state: resolver, ASN tables, RDAP cache, patterns."""

    def __init__(
        self,
        config: Config,
        db: Any,
        now: datetime,
        *,
        fetch_securitytxt: SecurityTxtFetcher | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.now = now
        self.fetch_securitytxt = fetch_securitytxt
        self.resolver = Resolver.from_config(config.network)
        self.cache = RdapCacheStore(db, config.rdap, now)
        self.rdap_queries = 0
        self.seconds: Counter[str] = Counter()
        self._shared_counts: Counter[str] | None = None
        # Inside run(): one event loop and one RDAP client (its keep-alive pool) for every batch.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rdap_client: RdapClient | None = None

    @cached_property
    def asndb(self) -> AsnDb:
        return AsnDb.shared(self.config.asn)

    @cached_property
    def patterns(self) -> ProviderPatterns:
        return ProviderPatterns.load(self.config.enrich.providers_file)

    @cached_property
    def csirts(self) -> dict[str, Csirt]:
        return load_cert_contacts(self.config.escalation.cert_contacts)

    # selection

    def due_site_ids(
        self, session: Session, limit: int | None = None, *, among: Sequence[int] | None = None
    ) -> list[int]:
        """Sites due now: never enriched, gaps whose retry time came, stale, or with an
        open incident that has no ladder yet."""
        no_ladder = (
            select(Incident.site_id)
            .where(
                Incident.state.in_(OPEN_STATES),
                ~exists().where(Recipient.incident_id == Incident.id),
            )
            .scalar_subquery()
        )
        query = (
            select(Site.id)
            .where(
                or_(
                    Site.next_enrich_at.is_(None),
                    Site.next_enrich_at <= self.now,
                    Site.id.in_(no_ladder),
                )
            )
            .order_by(Site.id)
        )
        if among is not None:
            query = query.where(Site.id.in_(list(among)))
        if limit:
            query = query.limit(limit)
        return list(session.scalars(query))

    # the run

    def run(
        self, site_ids: Sequence[int], *, on_batch: Callable[[int], None] | None = None
    ) -> EnrichSummary:
        summary = EnrichSummary()
        self.cache.load()
        self._loop = asyncio.new_event_loop()
        self._rdap_client = RdapClient(self.config.rdap, clock=lambda: self.now)
        try:
            self._loop.run_until_complete(self._rdap_client.__aenter__())
            self._run_batches(site_ids, summary, on_batch)
        finally:
            self._loop.run_until_complete(self._rdap_client.__aexit__(None, None, None))
            self._loop.close()
            self._loop = self._rdap_client = None
            close = getattr(self.fetch_securitytxt, "close", None)
            if callable(close):  # a fetcher with a worker process (enrich.fetch.ProcessFetcher)
                close()
        summary.seconds = self.seconds
        summary.rdap_queries = self.rdap_queries
        summary.rdap_hits = self.cache.hits
        summary.rdap_misses = self.cache.misses
        with self.db.session() as session:
            self._count_contacts(session, site_ids, summary)
        return summary

    def _run_batches(
        self,
        site_ids: Sequence[int],
        summary: EnrichSummary,
        on_batch: Callable[[int], None] | None,
    ) -> None:
        size = self.config.enrich.batch_size
        # A small first group, so the first batches need not wait for a thousand fetches.
        cuts = [
            0,
            min(len(site_ids), 2 * size),
            *range(2 * size + PREFETCH, len(site_ids), PREFETCH),
        ]
        cuts.append(len(site_ids))
        groups = [list(site_ids[a:b]) for a, b in pairwise(cuts) if b > a]
        with ThreadPoolExecutor(1, thread_name_prefix="securitytxt") as pool:
            # Every group's fetch is queued now: the worker fetches them in order while this
            # thread does DNS, RDAP and writing, and each batch waits only for its own group.
            fetches = [pool.submit(self._prefetch_securitytxt, group) for group in groups]
            try:
                for group, fetched in zip(groups, fetches, strict=True):
                    for start in range(0, len(group), size):
                        batch = group[start : start + size]
                        for report in self.enrich_batch(batch, securitytxt=fetched):
                            summary.add(report)
                        if on_batch:
                            on_batch(len(batch))
            finally:
                for fetched in fetches:
                    fetched.cancel()

    def set_now(self, now: datetime) -> None:
        """Move this run's clock (a long-lived enricher, as in the crawl's pipeline)."""
        self.now = now
        self.cache.now = now

    def _prefetch_securitytxt(self, site_ids: list[int]) -> dict[int, Fetched] | None:
        if not self.config.enrich.securitytxt or self.fetch_securitytxt is None:
            return None
        started = time.perf_counter()
        facts = self._load(site_ids)
        targets = [(f.site_id, f.host, candidate_urls(f.host, f.origins)) for f in facts]
        try:
            return self.fetch_securitytxt(targets)
        except Exception as exc:  # a broken fetcher is a gap for every site, not a crash
            log.warning("security.txt fetching failed: %s", exc)
            return {}
        finally:
            self.seconds["security.txt fetch (overlapped)"] += time.perf_counter() - started

    def enrich_batch(
        self,
        site_ids: list[int],
        *,
        securitytxt: dict[int, Fetched] | Future[dict[int, Fetched] | None] | None = None,
    ) -> list[SiteReport]:
        """Enrich these sites; ``securitytxt`` brings fetches done elsewhere (the pipeline)."""
        self.cache.load()
        facts = self._load(site_ids)
        if not facts:
            return []
        for phase, step in (
            ("dns", lambda: self._resolve(facts)),
            ("asn", lambda: self._lookup_asn(facts)),
            ("rdap", lambda: self._run_async(self._rdap(facts))),
            ("security.txt", lambda: self._securitytxt(facts, securitytxt)),
        ):
            started = time.perf_counter()
            step()
            self.seconds[phase] += time.perf_counter() - started
        started = time.perf_counter()
        reports = self._write(facts)
        self.seconds["write"] += time.perf_counter() - started
        return reports

    # gathering

    def _load(self, site_ids: list[int]) -> list[_Facts]:
        with self.db.session() as session:
            sites = list(session.scalars(select(Site).where(Site.id.in_(site_ids))))
            origins: dict[int, list[str]] = {}
            rows = session.execute(
                select(Url.site_id, Url.url).where(Url.site_id.in_(site_ids)).order_by(Url.id)
            )
            for site_id, url in rows:
                found = origins.setdefault(site_id, [])
                if len(found) < 5:
                    found.append(url)
        return [
            _Facts(
                site_id=site.id,
                host=site.host.lower().rstrip("."),
                registered_domain=site.registered_domain or registered_domain(site.host),
                old_ips=list(site.ips or []),
                origins=origins.get(site.id, []),
            )
            for site in sites
        ]

    def _resolve(self, facts: list[_Facts]) -> None:
        answers = resolve_many(
            self.resolver, [f.host for f in facts], self.config.enrich.dns_concurrency
        )
        for fact in facts:
            answer = answers[fact.host]
            addresses = answer.addresses[: self.config.enrich.max_ips]
            fact.dns = HostAddresses(
                answer.host, addresses, answer.cname_chain, answer.source, answer.error
            )

    def _lookup_asn(self, facts: list[_Facts]) -> None:
        for fact in facts:
            for address in fact.ips:
                fact.asn[address] = self.asndb.lookup(address)

    def _run_async(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(coro)
        else:
            asyncio.run(coro)

    @contextlib.asynccontextmanager
    async def _rdap_session(self) -> AsyncIterator[RdapClient]:
        """The run's client, or one for this batch alone (the crawl's pipeline)."""
        if self._rdap_client is not None:
            yield self._rdap_client
            return
        async with RdapClient(self.config.rdap, clock=lambda: self.now) as client:
            yield client

    async def _rdap(self, facts: list[_Facts]) -> None:
        """Networks then domains; one representative per BGP prefix first, so the
        other addresses of a network are answered from the cache."""
        self.cache.prefetch_domains([f.registered_domain for f in facts if f.registered_domain])
        wanted: dict[str, list[_Facts]] = {}
        for fact in facts:
            for address in fact.ips:
                cached = self.cache.network(address, count=False)
                if cached is not None:
                    fact.networks[address] = cached
                else:
                    wanted.setdefault(address, []).append(fact)
        groups: dict[str, list[str]] = {}
        for address in wanted:
            info = next(iter(wanted[address])).asn.get(address)
            group = info.prefix if info and info.prefix else _slash24(address)
            groups.setdefault(group, []).append(address)
        queried: set[str] = set()
        async with self._rdap_session() as client:
            first = [members[0] for members in groups.values()]
            rest = [a for members in groups.values() for a in members[1:]]
            for wave in (first, rest):
                queries = [a for a in wave if self.cache.network(a, count=False) is None]
                results = await asyncio.gather(*(client.lookup_ip(a) for a in queries))
                queried.update(queries)
                self.rdap_queries += len(queries)
                self.cache.remember(list(results))
                answered = {o.key: o for o in results}
                for address in wave:
                    outcome = answered.get(address)
                    for fact in wanted[address]:
                        if outcome is not None and not outcome.ok:
                            fact.network_errors[address] = outcome
                        elif outcome is not None:
                            fact.networks[address] = (
                                outcome.result
                                if isinstance(outcome.result, NetworkInfo)
                                else NEGATIVE
                            )
                        else:
                            fact.networks[address] = self.cache.network(address, count=False)
            # per site and address: only the lookup that had to ask a server is a miss
            for fact in facts:
                for address in fact.ips:
                    if address in queried and wanted[address][0] is fact:
                        self.cache.misses += 1
                    else:
                        self.cache.hits += 1
            domains: dict[str, list[_Facts]] = {}
            for fact in facts:
                if not fact.registered_domain:
                    continue
                cached = self.cache.domain(fact.registered_domain, count=False)
                if cached is not None:
                    fact.registrar = cached
                    self.cache.hits += 1
                else:
                    domains.setdefault(fact.registered_domain, []).append(fact)
            results = await asyncio.gather(*(client.lookup_domain(d) for d in domains))
            self.rdap_queries += len(domains)
            self.cache.remember(list(results))
            for outcome in results:
                for position, fact in enumerate(domains[outcome.key]):
                    if position:
                        self.cache.hits += 1  # another site under the same domain
                    else:
                        self.cache.misses += 1
                    if outcome.ok:
                        fact.registrar = (
                            outcome.result
                            if isinstance(outcome.result, RegistrarInfo)
                            else NEGATIVE
                        )
                    else:
                        fact.registrar_error = outcome

    def _securitytxt(
        self,
        facts: list[_Facts],
        fetched: dict[int, Fetched] | Future[dict[int, Fetched] | None] | None,
    ) -> None:
        if not self.config.enrich.securitytxt:
            return
        if isinstance(fetched, Future):
            fetched = fetched.result()  # the prefetch of this batch's group
            if fetched is None:
                return
        if fetched is None:
            if self.fetch_securitytxt is None:
                return
            targets = [(f.site_id, f.host, candidate_urls(f.host, f.origins)) for f in facts]
            try:
                fetched = self.fetch_securitytxt(targets)
            except Exception as exc:  # a broken fetcher is a gap for every site, not a crash
                log.warning("security.txt fetching failed: %s", exc)
                fetched = {}
        for fact in facts:
            result = fetched.get(fact.site_id) or Fetched("error", detail="not fetched")
            fact.securitytxt_detail = result.detail[:300]
            if result.state != "found":
                fact.securitytxt_state = result.state
                continue
            parsed = parse(
                result.body[: self.config.enrich.securitytxt_max_bytes], result.url, self.now
            )
            fact.securitytxt = parsed
            if parsed.expired:
                fact.securitytxt_state = "expired"
            elif parsed.emails:
                fact.securitytxt_state = "found"
            else:
                fact.securitytxt_state = "absent"
                fact.securitytxt_detail = (
                    "only a web form" if parsed.web_forms else "no mailto: Contact"
                )

    # writing

    def _write(self, facts: list[_Facts]) -> list[SiteReport]:
        """Write a batch in one transaction, with a handful of queries for the whole batch.

        A claim (``BEGIN IMMEDIATE`` on SQLite), as every writer's: the transaction reads
        before it writes, and a deferred one that meets another writer (the crawl's store
        pipeline) fails at once with "database is locked" instead of waiting out the
        busy timeout.
        """
        ids = [f.site_id for f in facts]
        with self.db.claim() as session:
            shared_counts = self._shared(session, facts)
            batch = _Batch()
            batch.sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(ids)))}
            for link in session.scalars(select(SiteContact).where(SiteContact.site_id.in_(ids))):
                batch.links.setdefault(link.site_id, []).append(link)
            for incident in session.scalars(
                select(Incident).where(Incident.site_id.in_(ids), Incident.state.in_(OPEN_STATES))
            ):
                batch.incidents.setdefault(incident.site_id, []).append(incident)
            incident_ids = [i.id for group in batch.incidents.values() for i in group]
            for start in range(0, len(incident_ids), 500):
                for row in session.scalars(
                    select(Recipient).where(
                        Recipient.incident_id.in_(incident_ids[start : start + 500])
                    )
                ):
                    batch.recipients.setdefault(row.incident_id, []).append(row)
            plans = [
                self._plan(batch.sites[f.site_id], f, shared_counts)
                for f in facts
                if f.site_id in batch.sites
            ]
            note_origins(session, [p.site for p in plans], EvidenceStore.from_config(self.config))
            linked = {link.contact_id for group in batch.links.values() for link in group}
            self._ensure_contacts(session, plans, linked, batch)
            reports = []
            for plan in plans:
                self._apply_contacts(session, plan, batch)
                self._sync_ladders(session, plan, batch)
                reports.append(plan.report)
                eventlog.record(
                    session,
                    self.now,
                    "site.enriched",
                    subject=("site", plan.site.id),
                    state=plan.site.enrich_state,
                    gaps=plan.site.enrich_gaps,
                    ips=plan.site.ips,
                    asn=plan.site.asn,
                    registrar=plan.site.registrar,
                    cdn=plan.site.cdn,
                    shared_hosting=plan.site.shared_hosting,
                    securitytxt=plan.fact.securitytxt_state,
                    moved=plan.moved,
                )
        return reports

    def _shared(self, session: Session, facts: list[_Facts]) -> Counter[str]:
        """How many known sites sit on each address (a crude reverse-IP count)."""
        if self._shared_counts is None:
            counts: Counter[str] = Counter()
            for (ips,) in session.execute(select(Site.ips)):
                counts.update(set(ips or []))
            self._shared_counts = counts
        for fact in facts:
            self._shared_counts.subtract(set(fact.old_ips))
            self._shared_counts.update(set(fact.ips))
        return self._shared_counts

    def _plan(self, site: Site, fact: _Facts, shared_counts: Counter[str]) -> _Plan:
        """Update the site row from what was learnt, and decide its contacts (no queries)."""
        gaps: list[str] = []
        errors: list[str] = []
        retry_at: datetime | None = None
        ips = fact.ips
        moved = bool(site.ips) and set(site.ips) != set(ips) and bool(ips)
        if fact.dns and fact.dns.error and not ips:
            gaps.append("dns")
            errors.append(fact.dns.error)
            ips = list(site.ips or [])  # keep what we knew; the site may be briefly down
        primary = next(
            (a for a in ips if fact.asn.get(a) and fact.asn[a].asn), ips[0] if ips else None
        )
        asn = fact.asn.get(primary) if primary else None
        networks = [n for a in ips if isinstance(n := fact.networks.get(a), NetworkInfo)]
        primary_net = fact.networks.get(primary) if primary else None
        if not isinstance(primary_net, NetworkInfo):
            primary_net = networks[0] if networks else None
        for address, outcome in fact.network_errors.items():
            errors.append(f"RDAP {address}: {outcome.error}")
            if outcome.retry_at and (retry_at is None or outcome.retry_at > retry_at):
                retry_at = outcome.retry_at
        if fact.network_errors:
            gaps.append("rdap:ip")
        hosting_gap = self._hosting_gap(site, fact, networks, errors)
        if hosting_gap:  # shown while it lasts; retried enrich.hosting_retries times
            gaps.append("hosting-contact")
        registrar = fact.registrar if isinstance(fact.registrar, RegistrarInfo) else None
        if registrar and not registrar.abuse_email:
            known = self.cache.registrar(registrar)
            if known and known.abuse_email:
                registrar.abuse_email, registrar.abuse_phone = known.abuse_email, known.abuse_phone
                registrar.abuse_from = known.abuse_from
        if fact.registrar_error is not None:
            gaps.append("rdap:domain")
            errors.append(f"RDAP {fact.registered_domain}: {fact.registrar_error.error}")
            if fact.registrar_error.retry_at and (
                retry_at is None or fact.registrar_error.retry_at > retry_at
            ):
                retry_at = fact.registrar_error.retry_at
        if fact.securitytxt_state == "error":
            gaps.append("security.txt")
            errors.append(f"security.txt: {fact.securitytxt_detail}")

        orgs = [n.org for n in networks] + [n.name for n in networks]
        as_name = asn.as_name if asn else None
        cdn = self.patterns.cdn_of(
            as_name, orgs, fact.dns.cname_chain if fact.dns else (), asn=asn.asn if asn else None
        )
        shared = self.patterns.shared_of(as_name, orgs)
        if (
            shared is None
            and primary
            and shared_counts[primary] >= self.config.enrich.shared_hosting_sites
        ):
            holder = (primary_net.org if primary_net else None) or as_name or "the host"
            shared = Match(holder, f"{shared_counts[primary]} known sites on {primary}")

        # the site row
        site.registered_domain = fact.registered_domain
        site.ips = ips
        if fact.dns and not fact.dns.error:
            site.cname_chain = list(fact.dns.cname_chain)
        if asn is not None or moved:
            site.asn = asn.asn if asn else None
            site.prefix = asn.prefix if asn else None
            site.as_name = (as_name or "")[:255] or None
        if primary_net is not None:
            site.country = primary_net.country or None
            site.network_name = (primary_net.org or primary_net.name)[:255] or None
        elif moved:
            site.country = site.network_name = None
        if registrar is not None:
            site.registrar = registrar.registrar[:255] or None
            site.registrar_iana_id = registrar.iana_id or None
        elif fact.registrar == NEGATIVE:
            site.registrar = site.registrar_iana_id = None
        site.cdn = cdn.name[:100] if cdn else None
        site.shared_hosting = shared is not None
        meta = dict(site.meta or {})
        meta["enrich"] = {
            "dns_source": fact.dns.source if fact.dns else None,
            "networks": [
                {
                    "ip": a,
                    "handle": n.handle,
                    "name": n.name,
                    "org": n.org,
                    "country": n.country,
                    "cidrs": n.cidrs[:4],
                    "server": n.server,
                }
                for a in ips
                if isinstance(n := fact.networks.get(a), NetworkInfo)
            ],
            "securitytxt": {
                "state": fact.securitytxt_state,
                "url": fact.securitytxt.url if fact.securitytxt else None,
                "languages": fact.securitytxt.languages if fact.securitytxt else [],
                "detail": fact.securitytxt_detail or None,
                # issue 11: web-form contacts kept (shown, never mailed); expiry shown
                "web_forms": fact.securitytxt.web_forms if fact.securitytxt else [],
                "expired": bool(fact.securitytxt and fact.securitytxt.expired),
                "expires": fact.securitytxt.expires.isoformat()
                if fact.securitytxt and fact.securitytxt.expires
                else None,
            },
            "cdn": cdn.evidence if cdn else None,
            "cdn_origin": (site.meta or {}).get("enrich", {}).get("cdn_origin") if cdn else None,
            "hosting_gap": hosting_gap,
            "shared_hosting": f"{shared.name}: {shared.evidence}" if shared else None,
            "moved_from": site.meta.get("enrich", {}).get("moved_from") if site.meta else None,
        }
        if moved:
            meta["enrich"]["moved_from"] = fact.old_ips
        site.meta = meta

        wanted = self._wanted_contacts(fact, networks, registrar, primary_net, moved)

        # state
        site.enrich_attempts = (site.enrich_attempts or 0) + 1
        site.enrich_gaps = sorted(set(gaps))
        site.enriched_at = self.now
        if [g for g in gaps if g != "hosting-contact" or (hosting_gap or {}).get("retrying")]:
            site.enrich_state = "partial"
            wait = min(
                self.config.enrich.retry_after * (2 ** min(site.enrich_attempts - 1, 8)),
                MAX_BACKOFF,
            )
            due = self.now + max(wait, timedelta(0))
            site.next_enrich_at = max(due, retry_at) if retry_at else due
            site.enrich_error = "; ".join(errors)[:2000]
        else:
            site.enrich_state = "done"
            site.enrich_attempts = 0
            site.next_enrich_at = self.now + self.config.enrich.refresh_after
            site.enrich_error = "; ".join(errors)[:2000] or None  # a hosting gap left standing

        context = SiteContext(
            host=site.host,
            registered_domain=site.registered_domain,
            ips=tuple(ips),
            asn=site.asn,
            as_name=site.as_name,
            prefix=site.prefix,
            network_name=primary_net.name if primary_net else None,
            network_org=site.network_name,
            network_country=site.country,
            registrar=site.registrar,
            registrar_iana_id=site.registrar_iana_id,
            cdn=site.cdn,
            cdn_evidence=cdn.evidence if cdn else None,
            shared_hosting=shared.name if shared else None,
            shared_evidence=shared.evidence if shared else None,
        )
        report = SiteReport(site.id, site.host, site.enrich_state, site.enrich_gaps, errors)
        return _Plan(site, fact, moved, wanted, context, report)

    def _hosting_gap(
        self, site: Site, fact: _Facts, networks: list[NetworkInfo], errors: list[str]
    ) -> dict[str, Any] | None:
        """A network answered but no abuse desk was found (on it, its parents or its org):
        a gap to show and to retry ``enrich.hosting_retries`` times, never a silent skip."""
        if fact.network_errors or not fact.ips or any(n.abuse_email for n in networks):
            return None  # an RDAP failure is its own gap (rdap:ip)
        failed = [n for n in networks if n.abuse_gap]
        if failed:
            reason = (
                f"the parent or org of {failed[0].handle or failed[0].name} could not be "
                f"asked: {failed[0].abuse_gap}"
            )
        elif networks:
            reason = "no abuse contact on the network, its parents or its org"
        else:
            reason = "no RDAP network answers for " + ", ".join(fact.ips[:3])
        before = ((site.meta or {}).get("enrich") or {}).get("hosting_gap") or {}
        attempts = int(before.get("attempts") or 0) + 1
        errors.append(f"hosting contact: {reason}")
        return {
            "reason": reason[:400],
            "attempts": attempts,
            "retrying": attempts <= self.config.enrich.hosting_retries,
            "since": before.get("since") or self.now.isoformat(),
        }

    def _wanted_contacts(
        self,
        fact: _Facts,
        networks: list[NetworkInfo],
        registrar: RegistrarInfo | None,
        primary_net: NetworkInfo | None,
        moved: bool,
    ) -> dict[str, list[dict[str, Any]]]:
        """The site's contacts by source, for each source that answered this run."""
        wanted: dict[str, list[dict[str, Any]]] = {}  # source -> contacts
        walk_failed = any(n.abuse_gap for n in networks)  # keep what we knew; retry
        if (not fact.network_errors and not walk_failed) or moved:
            entries = []
            for network in networks:
                if network.abuse_email:
                    entries.append(
                        {
                            "role": "hosting",
                            "email": network.abuse_email,
                            "name": network.abuse_name or network.org,
                            "phone": network.abuse_phone,
                            "confidence": 0.9 if network.abuse_from else 1.0,
                            "note": f"{network.org or network.name} {', '.join(network.cidrs[:2])}"
                            f" via {network.server}"
                            + (
                                f"; abuse desk of the {network.abuse_from}"
                                if network.abuse_from
                                else ""
                            ),
                        }
                    )
            wanted["rdap:ip"] = entries
        if fact.registrar_error is None and fact.registered_domain:
            entries = []
            if registrar is not None and registrar.abuse_email:
                entries.append(
                    {
                        "role": "registrar",
                        "email": registrar.abuse_email,
                        "name": registrar.registrar,
                        "phone": registrar.abuse_phone,
                        "confidence": 0.9 if registrar.abuse_from == "abuse" else 0.6,
                        "note": f"registrar of {fact.registered_domain}"
                        + (f", IANA id {registrar.iana_id}" if registrar.iana_id else ""),
                    }
                )
            wanted["rdap:domain"] = entries
        if fact.securitytxt_state in ("found", "expired", "absent"):
            entries = []
            if fact.securitytxt is not None and fact.securitytxt.emails:
                expired = fact.securitytxt.expired  # still a hint: used, flagged, trusted less
                for email in fact.securitytxt.emails:
                    entries.append(
                        {
                            "role": "owner",
                            "email": email,
                            "confidence": fact.securitytxt.confidence,
                            "languages": fact.securitytxt.languages,
                            "note": ("expired " if expired else "") + fact.securitytxt.url,
                        }
                    )
            wanted["security.txt"] = entries
        if self.config.enrich.rfc2142_guesses and fact.securitytxt_state != "error":
            has_owner = bool(wanted.get("security.txt"))
            wanted["rfc2142"] = (
                []
                if has_owner
                else [
                    {"role": "owner", "email": e, "confidence": 0.2, "note": "RFC 2142 guess"}
                    for e in rfc2142_guesses(fact.registered_domain)
                ]
            )
        country = (primary_net.country if primary_net else None) or None
        if primary_net is not None or moved or not fact.network_errors:
            entries = []
            csirt = self.csirts.get(country.upper()) if country else None
            if csirt is None and country is None:
                fallback = cctld_country(fact.registered_domain or fact.host)
                csirt = self.csirts.get(fallback.upper()) if fallback else None
            if csirt is not None:
                entries.append(
                    {
                        "role": "cert",
                        "email": csirt.email,
                        "confidence": 0.8,
                        "languages": [csirt.language] if csirt.language else [],
                        "note": csirt.country,
                    }
                )
            wanted["cert_contacts"] = entries

        return wanted

    def _ensure_contacts(
        self, session: Session, plans: list[_Plan], linked: set[int], batch: _Batch
    ) -> None:
        """Load or create every contact the batch needs: one query, one flush."""
        keys = {
            (entry["email"], entry["role"]): (source, entry)
            for plan in plans
            for source, entries in plan.wanted.items()
            for entry in entries
        }
        emails = sorted({email for email, _ in keys})
        for start in range(0, len(emails), 500):
            for contact in session.scalars(
                select(Contact).where(Contact.email.in_(emails[start : start + 500]))
            ):
                batch.contacts[(contact.email, contact.role)] = contact
        for contact in (
            session.scalars(select(Contact).where(Contact.id.in_(sorted(linked)))) if linked else ()
        ):
            batch.contacts[(contact.email, contact.role)] = contact
        missing = [key for key in keys if key not in batch.contacts]
        if missing:
            session.flush()
            try:
                with session.begin_nested():
                    for key in missing:
                        source, entry = keys[key]
                        batch.contacts[key] = self._new_contact(source, entry)
                        session.add(batch.contacts[key])
                    session.flush()
            except IntegrityError:  # another process created some meanwhile: one by one
                for key in missing:
                    batch.contacts.pop(key, None)
                    source, entry = keys[key]
                    batch.contacts[key] = self._contact(session, source, entry)
        for key, (_source, entry) in keys.items():
            self._update_contact(batch.contacts[key], entry)
        batch.by_id = {c.id: c for c in batch.contacts.values()}

    def _apply_contacts(self, session: Session, plan: _Plan, batch: _Batch) -> None:
        """Replace the site's links from each source that answered this run."""
        site = plan.site
        existing = batch.links.setdefault(site.id, [])
        for source, entries in plan.wanted.items():
            keep: set[int] = set()
            for entry in entries:
                contact = batch.contacts[(entry["email"], entry["role"])]
                keep.add(contact.id)
                link = next((sc for sc in existing if sc.contact_id == contact.id), None)
                if link is None:
                    link = SiteContact(site_id=site.id, contact_id=contact.id, found_at=self.now)
                    session.add(link)
                    existing.append(link)
                link.role = entry["role"]
                link.source = source
                link.confidence = entry["confidence"]
                link.note = (entry.get("note") or "")[:500] or None
            for link in [sc for sc in existing if sc.source == source]:
                if link.contact_id not in keep:
                    session.delete(link)
                    existing.remove(link)

    def _new_contact(self, source: str, entry: dict[str, Any]) -> Contact:
        return Contact(
            email=entry["email"],
            role=entry["role"],
            source=source,
            first_seen=self.now,
            confidence=entry["confidence"],
            languages=[],
        )

    @staticmethod
    def _update_contact(contact: Contact, entry: dict[str, Any]) -> None:
        if entry.get("name") and not contact.name:
            contact.name = str(entry["name"])[:255]
        if entry.get("phone") and not contact.phone:
            contact.phone = str(entry["phone"])[:64]
        languages = entry.get("languages")
        if languages and list(contact.languages or []) != list(languages):
            contact.languages = list(languages)
            contact.language = languages[0]
        if (contact.confidence or 0.0) < entry["confidence"]:
            contact.confidence = entry["confidence"]

    def _contact(self, session: Session, source: str, entry: dict[str, Any]) -> Contact:
        """Find or create one contact (the slow path, when a concurrent run raced us)."""
        query = select(Contact).where(
            Contact.email == entry["email"], Contact.role == entry["role"]
        )
        contact = session.scalars(query).one_or_none()
        if contact is None:
            contact = self._new_contact(source, entry)
            try:
                with session.begin_nested():
                    session.add(contact)
                    session.flush()
            except IntegrityError:
                contact = session.scalars(query).one()
        return contact

    def _sync_ladders(self, session: Session, plan: _Plan, batch: _Batch) -> None:
        incidents = batch.incidents.get(plan.site.id, [])
        if not incidents:
            return
        levels = self.config.enrich.ladder
        wanted_roles = roles_in(levels)
        candidates = [
            Candidate(batch.by_id[link.contact_id], link.role, link.source, link.confidence,
                      link.note or "")
            for link in batch.links.get(plan.site.id, [])
            if link.role in wanted_roles and link.contact_id in batch.by_id
        ]  # fmt: skip
        rungs = build_ladder(
            plan.context, candidates, levels, default_language=self.config.enrich.default_language
        )
        for incident in incidents:
            self._apply_ladder(session, incident, rungs, batch.recipients.get(incident.id, []))

    def _apply_ladder(
        self, session: Session, incident: Incident, rungs: list[Rung], current: list[Recipient]
    ) -> None:
        existing = {(r.contact_id, r.level): r for r in current}
        wanted = {(r.contact_id, r.level): r for r in rungs}
        changed = False
        stale = [key for key in existing if key not in wanted]
        if stale:
            changed = True
            for key in stale:  # never the key of a wanted rung, so no clash with the inserts
                session.delete(existing[key])
        for key, rung in wanted.items():
            row = existing.get(key)
            if row is None:
                row = Recipient(
                    incident_id=incident.id,
                    contact_id=rung.contact_id,
                    level=rung.level,
                    created_at=self.now,
                )
                session.add(row)
                changed = True
            values = {
                "role": rung.role,
                "reason": rung.reason,
                "language": rung.language,
                "note": rung.note,
                "cdn": rung.cdn,
                "confidence": rung.confidence,
            }
            for name, value in values.items():
                if getattr(row, name, None) != value:
                    setattr(row, name, value)
                    changed = True
        if changed:
            eventlog.record(
                session,
                self.now,
                "incident.ladder",
                incident_id=incident.id,
                ladder=[
                    {"level": r.level, "role": r.role, "email": r.email, "language": r.language}
                    for r in rungs
                ],
                removed=len(stale),
            )

    def _count_contacts(
        self, session: Session, site_ids: Sequence[int], summary: EnrichSummary
    ) -> None:
        for start in range(0, len(site_ids), 500):
            chunk = list(site_ids[start : start + 500])
            rows = session.execute(
                select(SiteContact.role, SiteContact.source).where(SiteContact.site_id.in_(chunk))
            )
            summary.contacts.update(f"{role} ({source})" for role, source in rows)
            summary.recipients += len(
                session.scalars(
                    select(Recipient.id)
                    .join(Incident, Incident.id == Recipient.incident_id)
                    .where(Incident.site_id.in_(chunk), Incident.state.in_(OPEN_STATES))
                ).all()
            )
            summary.incidents += len(
                session.scalars(
                    select(Incident.id).where(
                        Incident.site_id.in_(chunk), Incident.state.in_(OPEN_STATES)
                    )
                ).all()
            )


def _slash24(address: str) -> str:
    ip = ipaddress.ip_address(address)
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def enrich_sites(
    app: Any,
    site_ids: Iterable[int] | None = None,
    *,
    fetch_securitytxt: SecurityTxtFetcher | None = None,
    on_batch: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> EnrichSummary:
    """Enrich these sites now (None: every site that is due) and rebuild their ladders.

    The notifier calls this for a site that moved host: DNS is resolved afresh,
    the new network's abuse desk replaces the old one, and the open incidents'
    ladders are rebuilt (rungs of the old host are removed). security.txt is
    fetched through the guarded asyncio fetcher unless another fetcher is given.
    """
    if fetch_securitytxt is None and app.config.enrich.securitytxt:
        from enrich.fetch import guarded_fetcher

        fetch_securitytxt = guarded_fetcher(app)
    enricher = Enricher(app.config, app.db, app.clock.now(), fetch_securitytxt=fetch_securitytxt)
    if site_ids is None:
        with app.db.session() as session:
            ids = enricher.due_site_ids(session, limit)
    else:
        ids = sorted(set(site_ids))
    return enricher.run(ids, on_batch=on_batch)

"""The store writer: the check, the URL's state, and for malicious checks the site,
its campaign and its incident.

It runs in the check worker (``pipelines.worker``), one writer per crawl, a
batch of checks per transaction, taken with :meth:`Database.claim` so a
concurrent process cannot interleave on SQLite.

Campaigns cluster incidents by family plus a shared indicator: the same
injected-script host, payload hash, redirect target... (the verdict's cluster
keys). ``ingest --campaign NAME`` (``Url.campaign_hint``) overrides that. A
campaign keeps its first and last seen times and its indicators; its counts are
its incidents.
"""

from __future__ import annotations

import logging
from datetime import datetime
from logging import DEBUG, WARNING
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crawler.items import CheckItem, CheckOutcome, Dropped
from crawler.signatures.domains import host_of, registered_domain
from pipelines import executables
from store import eventlog, incidents
from store.db import UNAVAILABLE, Database
from store.models import Campaign, Check, Event, Evidence, Incident, IncidentUrl, Site, Url
from tocsin.config import Config

log = logging.getLogger("tocsin.crawl.store")

MAX_CAMPAIGN_IOCS = 200

Stored = CheckOutcome | Dropped | None  # stored; dropped (lease taken over); not stored


def _lease_lost(items: list[CheckItem], urls: dict[int, Url]) -> dict[int, Dropped]:
    """The checks whose URL another crawl has leased since (by ``id(item)``): not stored.

    Their crawl was presumed dead (its lease lapsed, or its job was retried), and the
    crawl that took over stores the URL's check for the round.
    """
    lost: dict[int, Dropped] = {}
    for item in items:
        url = urls.get(item.url_id)
        if item.lease and url is not None and url.lease_token != item.lease:
            holder = "nobody" if url.lease_token is None else "another crawl"
            lost[id(item)] = Dropped(item.url_id, item.url, f"lease lost: {holder} holds it now")
            log.warning("store: dropped the check of %s: its lease is lost", item.url)
    return lost


class StoreWriter:
    """Writes a crawl's checks; its caches (campaigns by key, names) last for the crawl."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.config = config
        self.key_index: dict[str, dict[str, int]] = {}  # family -> cluster key -> campaign id
        self.names: set[str] | None = None  # campaign names, loaded on first need
        # While a batch's campaigns are chosen: the new ones, by name and by cluster key.
        self._fresh: dict[str, Any] | None = None

    def store_batch(self, items: list[CheckItem], now: datetime) -> list[Stored]:
        """One transaction for the batch; item by item if it fails.

        A concurrent writer (an IntegrityError) or one check the database refuses
        must not cost the whole batch, nor come back to fail it on every crawl. A
        store that cannot be reached at all fails the batch: its URLs stay due.
        """
        try:
            with self.db.claim() as session:
                return self._store_many(session, items, now)
        except Exception as exc:
            self._forget()  # the caches may name campaigns that were rolled back
            if isinstance(exc, UNAVAILABLE):
                raise
            raced = isinstance(exc, IntegrityError)  # a concurrent writer got there first
            log.log(DEBUG if raced else WARNING, "store: storing one by one", exc_info=True)
        return [self.store(item, now) for item in items]

    def store(self, item: CheckItem, now: datetime) -> Stored:
        """Store one check; one the database refuses is stored as an ``error`` saying so."""
        for last_try in (False, True):
            try:
                return self._store_one(item, now)
            except UNAVAILABLE:
                raise
            except Exception as exc:
                self._forget()
                log.error("store: the check of %s was refused: %s", item.url, exc, exc_info=True)
                if last_try:
                    return None  # not even as an error: the URL stays due
                item.fail(f"the check could not be stored ({type(exc).__name__}); kept as an error")
        return None

    def _store_one(self, item: CheckItem, now: datetime) -> Stored:
        for attempt in range(3):
            try:
                with self.db.claim() as session:
                    return self._store_many(session, [item], now)[0]
            except IntegrityError:
                if attempt == 2:
                    raise
                log.debug("store: a concurrent writer got there first; retrying", exc_info=True)
                self._forget()
        return None

    def _forget(self) -> None:
        self.key_index.clear()
        self.names = None

    def _store_many(self, session: Session, items: list[CheckItem], now: datetime) -> list[Stored]:
        """Checks, evidence, URL states and events in few statements; then the incidents."""
        everything = items
        ids = {item.url_id for item in items}
        query = select(Url).where(Url.id.in_(ids))
        if any(item.lease for item in items):  # hold the rows: a lease is checked, then released
            query = query.order_by(Url.id).with_for_update()  # in one order: no deadlock
        urls = {u.id: u for u in session.scalars(query)}
        dropped = _lease_lost(items, urls)
        items = [item for item in items if id(item) not in dropped]
        executables.corroborate(session, items)  # a compromised site's lone executable
        rows: list[tuple[CheckItem, Url, Check]] = []
        for item in items:
            url = urls.get(item.url_id)
            if url is None:
                log.warning("URL %s vanished before its check was stored", item.url_id)
                continue
            if item.lease:  # stored: the lease is done with, in the same transaction
                url.lease_token = url.lease_job = url.lease_expires_at = None
            rows.append((item, url, _check_row(item, url, now)))
        session.add_all([check for _, _, check in rows])
        session.flush()  # one multi-row INSERT ... RETURNING for the checks' ids

        crawl = self.config.crawl
        evidence: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for item, url, check in rows:
            seen: set[tuple[str, str]] = set()
            for blob in item.blobs:
                if blob.sha256 is None or (blob.kind, blob.sha256) in seen:
                    continue
                seen.add((blob.kind, blob.sha256))
                evidence.append(
                    {
                        "check_id": check.id,
                        "kind": blob.kind,
                        "sha256": blob.sha256,
                        "size": blob.size,
                        "media_type": blob.media_type,
                        "note": blob.note,
                        "content_sha256": blob.content_sha256,
                        "created_at": now,
                    }
                )
            previous = url.verdict
            url.verdict = check.verdict
            url.family = item.family
            url.confidence = item.confidence
            url.rules = list(item.rules)
            url.last_checked = now
            url.check_count = (url.check_count or 0) + 1
            if check.verdict != previous:
                url.verdict_at = now
            if check.verdict == "error" and url.check_count < crawl.max_attempts:
                url.next_check_at = now + crawl.error_retry_after
            else:
                url.next_check_at = None
            events.append(
                {
                    "at": now,
                    "kind": "check.completed",
                    "incident_id": None,
                    "subject_type": "check",
                    "subject_id": check.id,
                    "actor": "tocsin",
                    "data": {
                        "url_id": url.id,
                        "check_kind": item.kind,
                        "route": item.route,
                        "verdict": check.verdict,
                        "family": item.family,
                        "previous": previous,
                    },
                }
            )
        # Plain rows go in as one executemany each (the event log is append-only: insert only).
        if evidence:
            session.execute(insert(Evidence), evidence)
        if events:
            session.execute(insert(Event), events)

        session.flush()
        malicious = [row for row in rows if row[2].verdict == "malicious"]
        sites = self._sites(session, [(url, item) for item, url, _ in malicious], now)
        # Each URL's earlier campaigns in one query for the batch; a URL met again in the
        # batch gets the campaign its first check got (``_campaigns`` keeps ``previous``
        # current), and a flush first, so that record_malicious sees the first one's link.
        previous = self._previous_many(session, [url.id for _, url, _ in malicious])
        # One open incident per site: a site that has one keeps its campaign whatever
        # family this check found, and so does a site met twice in this batch.
        by_site = _open_campaigns(session, sites)
        recorded: list[tuple[Check, Incident, Campaign]] = []
        seen: set[int] = set()
        with session.no_autoflush:  # flush only where an id is needed
            # Every campaign first (the new ones in one flush), then the incidents,
            # which need the campaigns' ids.
            chosen = self._campaigns(session, malicious, now, previous, by_site)
            for (item, url, check), campaign in zip(malicious, chosen, strict=True):
                if url.id in seen:
                    session.flush()
                seen.add(url.id)
                site = sites[_site_host(url, item)]
                url.site_id = site.id
                incident = incidents.record_malicious(
                    session, site=site, campaign=campaign, url=url, check=check, now=now
                )
                recorded.append((check, incident, campaign))
            session.flush()
        found = {check.id: (incident.id, campaign.name) for check, incident, campaign in recorded}
        outcomes: dict[int, CheckOutcome] = {}
        for item, url, check in rows:
            incident_id, campaign_name = found.get(check.id, (None, None))
            outcomes[id(item)] = CheckOutcome(
                url_id=url.id,
                check_id=check.id,
                url=url.url,
                kind=item.kind,
                verdict=check.verdict,
                family=item.family,
                confidence=item.confidence,
                rules=tuple(item.rules),
                error=item.error,
                route=item.route,
                incident_id=incident_id,
                campaign=campaign_name,
            )
        return [dropped.get(id(item)) or outcomes.get(id(item)) for item in everything]

    def _sites(
        self, session: Session, pairs: list[tuple[Url, CheckItem]], now: datetime
    ) -> dict[str, Site]:
        """The sites of these malicious URLs by host, creating the new ones in one flush."""
        hosts = {_site_host(url, item): (url, item) for url, item in pairs}
        if not hosts:
            return {}
        sites = {s.host: s for s in session.scalars(select(Site).where(Site.host.in_(hosts)))}
        created = []
        for host, (url, item) in hosts.items():
            if host in sites:
                continue
            ips = [h["ip"] for h in item.redirect_chain[:1] if h.get("ip")]
            site = Site(
                host=host,
                registered_domain=registered_domain(host) or None,
                ips=ips,
                cname_chain=[],
                shared_hosting=False,
                first_seen=now,
                enrich_state="pending",
                meta={},
            )
            sites[host] = site
            created.append((site, url))
        session.add_all([site for site, _ in created])
        session.flush()
        for site, url in created:
            eventlog.record(
                session,
                now,
                "site.created",
                subject=("site", site.id),
                host=site.host,
                url_id=url.id,
            )
        return sites

    def _campaigns(
        self,
        session: Session,
        rows: list[tuple[CheckItem, Url, Check]],
        now: datetime,
        previous: dict[tuple[int, str], Campaign],
        by_site: dict[str, Campaign],
    ) -> list[Campaign]:
        """:meth:`_campaign` for each row, the new campaigns written in one flush;
        a row whose site has an open incident (``by_site``) takes that one's campaign.
        A row named into a campaign at ingest (``--campaign``) takes that campaign, and
        goes first: the site's incident moves there (``record_malicious``) and the
        site's other URLs follow it."""
        self._fresh = {"new": [], "names": {}, "keys": {}}
        order = sorted(range(len(rows)), key=lambda i: rows[i][1].campaign_hint is None)
        try:
            picked: dict[int, Campaign] = {}
            for index in order:
                item, url, _ = rows[index]
                host = _site_host(url, item)
                campaign = None if url.campaign_hint else by_site.get(host)
                if campaign is not None:
                    _join_campaign(campaign, item, now)
                else:
                    campaign = self._campaign(session, item, url, now, previous)
                    previous[(url.id, campaign.family)] = campaign  # for the URL's next check
                    by_site[host] = campaign
                picked[index] = campaign
            chosen = [picked[index] for index in range(len(rows))]
            fresh, self._fresh = self._fresh, None
        except BaseException:
            self._fresh = None
            raise
        if fresh["new"]:
            session.flush()
        for campaign in fresh["new"]:
            self._campaign_created(session, campaign, now)
        for (family, key), campaign in fresh["keys"].items():
            self.key_index.setdefault(family, {}).setdefault(key, campaign.id)
        return chosen

    def _campaign(
        self,
        session: Session,
        item: CheckItem,
        url: Url,
        now: datetime,
        previous: dict[tuple[int, str], Campaign],
    ) -> Campaign:
        """The campaign of a malicious check; ``previous`` is :meth:`_previous_many`'s answer."""
        family = item.family or "unknown"
        keys = list(item.meta.get("cluster") or []) or [f"site:{url.host}"]
        fresh = self._batch()
        if url.campaign_hint:
            campaign = (
                fresh["names"].get(url.campaign_hint)
                or session.scalars(
                    select(Campaign).where(Campaign.name == url.campaign_hint)
                ).one_or_none()
            )
            if campaign is None:
                campaign = self._new_campaign(
                    session, url.campaign_hint, family, None, now, manual=True
                )
        else:
            # A URL seen malicious before stays in its campaign (same family): a site
            # compromised again is the same incident reopened, even with a new payload.
            campaign = previous.get((url.id, family)) or self._match(session, family, keys)
            if campaign is None:
                value = keys[0].split(":", 1)[-1]
                name = f"{family} {value}"[:190]
                if self.names is None:  # once per crawl, not one query per campaign
                    self.names = set(session.scalars(select(Campaign.name)))
                if name in self.names:
                    name = f"{name} #{now:%Y%m%d%H%M%S%f}"
                campaign = self._new_campaign(
                    session, name, family, f"{family}|{keys[0]}"[:400], now, manual=False
                )
        campaign.first_seen = min(campaign.first_seen, now)
        campaign.last_seen = max(campaign.last_seen, now)
        iocs = {k: list(v) for k, v in (campaign.iocs or {}).items()}
        for kind, values in [("keys", keys), *item.iocs.items()]:
            bucket = iocs.setdefault(kind, [])
            for value in values:
                if value not in bucket and len(bucket) < MAX_CAMPAIGN_IOCS:
                    bucket.append(value)
        campaign.iocs = iocs
        index = self.key_index.setdefault(family, {})
        for key in keys:
            if key in index or (family, key) in fresh["keys"]:
                continue  # taken already, as setdefault would leave it
            if campaign.id is not None:
                index.setdefault(key, campaign.id)
            else:  # a new campaign: its id comes with the batch's flush
                fresh["keys"][(family, key)] = campaign
        return campaign

    def _batch(self) -> dict[str, Any]:
        """The campaigns :meth:`_campaigns` is choosing: new ones, by name, by cluster key."""
        assert self._fresh is not None, "campaigns are chosen per batch, in _campaigns"
        return self._fresh

    def _previous_many(
        self, session: Session, url_ids: list[int]
    ) -> dict[tuple[int, str], Campaign]:
        """Each URL's latest campaign per family, from its incidents: (url id, family) -> it."""
        found: dict[tuple[int, str], Campaign] = {}
        if not url_ids:
            return found
        rows = session.execute(
            select(IncidentUrl.url_id, Campaign)
            .join(Incident, IncidentUrl.incident_id == Incident.id)
            .join(Campaign, Incident.campaign_id == Campaign.id)
            .where(IncidentUrl.url_id.in_(set(url_ids)))
            .order_by(Incident.id.desc())
        )
        for url_id, campaign in rows:
            found.setdefault((url_id, campaign.family), campaign)
        return found

    def _match(self, session: Session, family: str, keys: list[str]) -> Campaign | None:
        if family not in self.key_index:
            index: dict[str, int] = {}
            rows = session.execute(
                select(Campaign.id, Campaign.iocs).where(
                    Campaign.family == family, Campaign.manual.is_(False)
                )
            )
            for campaign_id, iocs in rows:
                for key in (iocs or {}).get("keys", []):
                    index.setdefault(key, campaign_id)
            self.key_index[family] = index
        index = self.key_index[family]
        fresh = self._batch()["keys"]
        for key in keys:
            if (family, key) in fresh:  # created earlier in this batch, not yet written
                return fresh[(family, key)]
            if key in index:
                found = session.get(Campaign, index[key])
                if found is not None:
                    return found
        return None

    def _new_campaign(
        self,
        session: Session,
        name: str,
        family: str,
        cluster_key: str | None,
        now: datetime,
        *,
        manual: bool,
    ) -> Campaign:
        campaign = Campaign(
            name=name,
            family=family,
            cluster_key=cluster_key,
            manual=manual,
            first_seen=now,
            last_seen=now,
            iocs={},
        )
        session.add(campaign)
        if self.names is not None:
            self.names.add(name)
        fresh = self._batch()  # written with the batch's other new campaigns
        fresh["new"].append(campaign)
        fresh["names"][name] = campaign
        return campaign

    def _campaign_created(self, session: Session, campaign: Campaign, now: datetime) -> None:
        eventlog.record(
            session,
            now,
            "campaign.created",
            subject=("campaign", campaign.id),
            name=campaign.name,
            family=campaign.family,
            manual=campaign.manual,
        )


def _open_campaigns(session: Session, sites: dict[str, Site]) -> dict[str, Campaign]:
    """The campaign of each site's open incident, by host (sites without one left out)."""
    by_id = {site.id: host for host, site in sites.items() if site.id is not None}
    found: dict[str, Campaign] = {}
    if not by_id:
        return found
    rows = session.execute(
        select(Incident.site_id, Campaign)
        .join(Campaign, Incident.campaign_id == Campaign.id)
        .where(Incident.site_id.in_(by_id), Incident.state.in_(incidents.OPEN_STATES))
        .order_by(Incident.id)
    )
    for site_id, campaign in rows:
        found.setdefault(by_id[site_id], campaign)
    return found


def _join_campaign(campaign: Campaign, item: CheckItem, now: datetime) -> None:
    """A check that joins a site's open incident: the campaign is seen again and keeps
    the check's indicators (not its cluster keys: those name the check's own family)."""
    campaign.last_seen = max(campaign.last_seen, now)
    iocs = {k: list(v) for k, v in (campaign.iocs or {}).items()}
    for kind, values in item.iocs.items():
        bucket = iocs.setdefault(kind, [])
        for value in values:
            if value not in bucket and len(bucket) < MAX_CAMPAIGN_IOCS:
                bucket.append(value)
    campaign.iocs = iocs


def _site_host(url: Url, item: CheckItem) -> str:
    return (url.host or host_of(item.url)).lower()


def _check_row(item: CheckItem, url: Url, now: datetime) -> Check:
    return Check(
        url_id=url.id,
        kind=item.kind,
        started_at=item.started_at,
        finished_at=item.finished_at or now,
        route=item.route,
        route_reason=(item.route_reason or "")[:2000] or None,
        verdict=item.verdict or "error",
        family=item.family,
        confidence=item.confidence,
        rules=list(item.rules),
        iocs=item.iocs,
        evidence_lines=list(item.evidence_lines),
        error=(item.error or "")[:2000] or None,
        http_status=item.http_status,
        final_url=item.final_url,
        redirect_chain=item.redirect_chain[:60],
        content_type=item.content_type,
        payload_sha256=item.meta.get("payload_sha256"),
        meta=_check_meta(item),
    )


def _check_meta(item: CheckItem) -> dict[str, Any]:
    """What the check row keeps besides its columns (small; the full log is a blob)."""
    meta: dict[str, Any] = {}
    for key in ("sniffed", "browser_retry"):
        if item.meta.get(key):
            meta[key] = item.meta[key]
    if item.blocked:
        meta["blocked"] = item.blocked[:20]
    browser = item.browser or {}
    if browser:
        meta["browser"] = {
            "final_url": browser.get("final_url"),
            "title": browser.get("title"),
            "requests": len(browser.get("requests", [])),
            "blocked": browser.get("blocked", [])[:20],
            "popups": browser.get("popup_count"),
            "dialogs": browser.get("dialog_count"),
            "downloads": len(browser.get("downloads", [])),
            "clock_advanced_ms": browser.get("clock_advanced_ms"),
            "steps": browser.get("steps"),
            "elapsed_ms": browser.get("elapsed_ms"),
            # the visit's profile and referer, and every condition tried (docs/crawl.md)
            "condition": browser.get("condition"),
            "conditions": browser.get("conditions"),
        }
    if item.variants:
        meta["variants"] = {
            name: {k: v for k, v in variant.items() if k != "html"}
            for name, variant in item.variants.items()
        }
    return meta

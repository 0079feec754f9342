"""Visiting incidents again: the re-check and the notifier's last-minute check.

The crawl stage does the visiting (``crawler.runner.check_urls``: visit these
URLs now and store their checks); this module picks the URLs, reads back the
checks that visit stored, and says per incident whether it is still
malicious, fixed (every URL clean or offline), or inconclusive.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select

from store.models import Check, IncidentUrl, Site
from tocsin.app import App

log = logging.getLogger(__name__)

Checker = Callable[[App, list[int]], Any]
Verdict = Literal["malicious", "fixed", "inconclusive"]
MAX_URLS_PER_INCIDENT = 10


def default_checker(kind: str = "recheck") -> Checker | None:
    """The crawl stage's ``check_urls``, or None while that stage is not installed."""
    try:
        if importlib.util.find_spec("crawler.spiders.check") is None:
            return None
        from crawler.runner import check_urls
    except ImportError:
        return None

    def run(app: App, url_ids: list[int]) -> Any:
        return check_urls(app, url_ids, kind=kind)

    return run


@dataclass(frozen=True)
class Revisit:
    verdict: Verdict
    check_id: int | None  # the malicious check when still malicious
    verdicts: tuple[str, ...]


def revisit(app: App, incident_ids: Iterable[int], checker: Checker) -> dict[int, Revisit]:
    """Visit the incidents' URLs once (one crawl for all) and judge each incident."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    urls: dict[int, list[int]] = defaultdict(list)
    with app.db.session() as session:
        for incident_id, url_id in session.execute(
            select(IncidentUrl.incident_id, IncidentUrl.url_id)
            .where(IncidentUrl.incident_id.in_(ids))
            .order_by(IncidentUrl.incident_id, IncidentUrl.id.desc())
        ):
            if len(urls[incident_id]) < MAX_URLS_PER_INCIDENT:
                urls[incident_id].append(url_id)
        before = session.scalar(select(func.max(Check.id))) or 0
    all_urls = sorted({u for us in urls.values() for u in us})
    if all_urls:
        checker(app, all_urls)
    latest: dict[int, Check] = {}
    with app.db.session() as session:
        for start in range(0, len(all_urls), 900):
            for check in session.scalars(
                select(Check)
                .where(Check.id > before, Check.url_id.in_(all_urls[start : start + 900]))
                .order_by(Check.id)
            ):
                latest[check.url_id] = check
    results = {}
    for incident_id in ids:
        checks = [latest[u] for u in urls.get(incident_id, []) if u in latest]
        verdicts = tuple(c.verdict for c in checks)
        bad = next((c for c in checks if c.verdict == "malicious"), None)
        if bad is not None:
            results[incident_id] = Revisit("malicious", bad.id, verdicts)
        elif (
            checks
            and len(checks) == len(urls[incident_id])
            and all(v in ("clean", "offline") for v in verdicts)
        ):
            results[incident_id] = Revisit("fixed", None, verdicts)
        else:
            results[incident_id] = Revisit("inconclusive", None, verdicts)
    return results


def moved_sites(app: App, site_ids: Iterable[int]) -> list[int]:
    """Sites whose host now resolves to other addresses than enrichment recorded."""
    from tocsin.errors import ResolveError
    from tocsin.net.resolver import Resolver

    resolver = Resolver.from_config(app.config.network)
    moved = []
    with app.db.session() as session:
        for site in session.scalars(select(Site).where(Site.id.in_(sorted(set(site_ids))))):
            try:
                now_at = set(resolver.resolve(site.host).addresses)
            except ResolveError:
                continue
            if site.ips and now_at and now_at != set(site.ips):
                moved.append(site.id)
    return moved


def reenrich(app: App, site_ids: list[int]) -> bool:
    """Ask the enrich stage to look again at moved sites (new hosting, new ladder)."""
    if not site_ids:
        return True
    try:
        from enrich.service import enrich_sites
    except ImportError:
        log.warning("enrich stage not available: %d moved site(s) not re-enriched", len(site_ids))
        return False
    enrich_sites(app, site_ids)
    return True

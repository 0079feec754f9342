"""Shared pieces of the enrichment tests (a unique module name: conftest.py is not importable
reliably when every test folder has one)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from store.models import Campaign, Incident, Site, Url
from tocsin.sandbox.rdap import REAL_RESPONSES

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# Real registry answers (whoisit's test data): the sandbox serves the same files.
RESPONSES = REAL_RESPONSES
ASN_DATA = Path(__file__).resolve().parents[1] / "data" / "asn"  # see tests/data/README.md

# host -> address(es) in the test hosts file
HOSTS = {
    "www.themarquetry.com": ["1.1.1.10"],  # APNIC network, .com registrar with abuse desk
    "www.shop.co.jp": ["1.1.1.20"],  # .jp: no RDAP service for the TLD in the bootstrap
    "norway.no": ["130.59.1.1"],  # behind the 429-twice server (network and domain)
    "www.google.com": ["13.64.0.5"],  # behind the down server
    "expired.themarquetry.com": ["1.1.1.30"],
    "edge.example-cdn.com": ["2606:4700::10"],  # Cloudflare's AS: a CDN front
}


def make_site(
    session, host: str, *, campaign: str = "c1", scheme: str = "http", url: str | None = None
) -> Site:
    """A confirmed site with one malicious URL and an open incident, as the crawl leaves it."""
    site = Site(host=host, first_seen=T0, meta={})
    session.add(site)
    camp = session.scalars(select(Campaign).where(Campaign.name == campaign)).one_or_none()
    if camp is None:
        camp = Campaign(name=campaign, family="card-skimmer", first_seen=T0, last_seen=T0)
        session.add(camp)
    session.flush()
    url = url or f"{scheme}://{host}:8080/checkout/"
    session.add(
        Url(
            url=url,
            url_hash=hashlib.sha256(url.encode()).hexdigest(),
            host=host,
            site_id=site.id,
            verdict="malicious",
            family="card-skimmer",
            first_seen=T0,
            last_seen=T0,
        )
    )
    session.add(
        Incident(
            public_id=f"TCS-{site.id:04d}-{camp.id:04d}",
            site_id=site.id,
            campaign_id=camp.id,
            family="card-skimmer",
            first_seen=T0,
            last_confirmed=T0,
            meta={},
        )
    )
    session.flush()
    return site

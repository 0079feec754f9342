"""The enrich item pipeline inside a running crawl: sites are enriched as their checks
come through, security.txt fetched by the running engine (through the SSRF guard)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from enrich_support import T0, make_site
from scrapy import Spider
from sqlalchemy import select

from crawler.items import CheckItem
from crawler.runner import run_spiders
from store import migrate
from store.db import Database
from store.models import Contact, Recipient, Site, SiteContact, Url
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import load


class ConfirmedChecks(Spider):
    """Stands in for the check spider: yields the malicious checks the store pipeline saw."""

    name = "confirmed-checks"

    def __init__(self, items: list[CheckItem] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items = items or []

    async def start(self):
        for item in self.items:
            yield item


@pytest.mark.slow
def test_pipeline_enriches_confirmed_sites(sandbox, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    db = Database(url)
    migrate.upgrade(db)
    config = load(sandbox.write_config(tmp_path / "tocsin.toml", url, guard="strict"))
    specs = [sandbox.sites["injected-script"], sandbox.sites["known-bad-host"]]
    with db.session() as s:
        for spec in specs:
            make_site(s, spec.host, url=sandbox.url(spec.id))
        urls = list(s.execute(select(Url.id, Url.url)))
    items = [
        CheckItem(url_id=i, url=u, kind="triage", started_at=datetime.now(UTC), verdict="malicious")
        for i, u in urls
    ]
    items.append(items[0])  # a second URL of the same site: enriched once
    app = App(preset=config, clock=Clock(T0))
    results = run_spiders(
        app,
        [(ConfirmedChecks, {"items": items})],
        settings={"ITEM_PIPELINES": {"pipelines.enrich.EnrichPipeline": 400}},
    )
    assert results[0].stats.get("tocsin/enrich/sites") == 2
    with db.session() as s:
        sites = {x.host: x for x in s.scalars(select(Site))}
        owners = set(
            s.execute(
                select(Site.host, Contact.email)
                .join(SiteContact, SiteContact.site_id == Site.id)
                .join(Contact, Contact.id == SiteContact.contact_id)
                .where(SiteContact.role == "owner")
            )
        )
        assert s.scalars(select(Recipient)).first() is not None
    jp = sites["www.sakura-wagashi.co.jp"]
    assert jp.enrich_state == "done" and jp.asn == sandbox.providers["hanami"].asn
    assert ("www.sakura-wagashi.co.jp", "security@sakura-wagashi.co.jp") in owners  # .well-known
    assert ("www.lakeside-dental.com", "security@lakeside-dental.com") in owners  # legacy path
    # fetched through the guard-checked engine, from the sites' own origins
    paths = [r.get("path") for r in sandbox.request_log if "security.txt" in str(r.get("path"))]
    assert paths

"""Fixtures of the crawl tests: one shared crawl of the sandbox catalogue.

The expensive part is one ``tocsin crawl`` of the whole sandbox catalogue
(Chromium included); it runs once per session and many tests
read its results. Timeouts are shortened so hostile pages cost seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from crawl_support import COMMUNITY, FEED_KINDS, Crawl, add_urls, run_cli, sandbox_config

from store.db import Database
from tocsin.urls import normalise_url


@pytest.fixture(scope="session")  # shared: test_crawl_catalogue, test_crawl_cloaking
def catalogue_crawl(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    """Every feed-worthy sandbox site (SSRF ones apart), crawled once by ``tocsin crawl``.

    Community rule packs are switched on, so they are imported and evaluated over
    every page, and any false positive of theirs on a clean site would show.
    """
    folder = tmp_path_factory.mktemp("catalogue-crawl")
    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(
        sandbox,
        folder,
        db_url,
        signatures={
            "known_bad": str(sandbox.known_bad_path),
            "community_rules": [
                str(COMMUNITY / "fiddleitm" / "rules.json"),
                str(COMMUNITY / "iok" / "indicators"),
            ],
        },
    )
    db = Database(db_url)
    from store import migrate

    migrate.upgrade(db)
    sites = sandbox.select(FEED_KINDS, include_scale=False)
    urls = {site.id: sandbox.url(site.id) for site in sites}
    by_url = add_urls(db, urls.values())
    ids = {sid: by_url[normalise_url(u)] for sid, u in urls.items()}
    proc = run_cli(folder, config, "--now", "2026-03-02T10:00:00Z", "crawl", timeout=400)
    return Crawl(
        db=db,
        config=config,
        folder=folder,
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        sites={ids[s.id]: s for s in sites},
        ids=ids,
        sandbox=sandbox,
    )

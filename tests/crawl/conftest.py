"""Fixtures of the crawl tests: one shared crawl of the sandbox catalogue.

The expensive part is one ``tocsin crawl`` of the whole sandbox catalogue
(Chromium included); it runs once per session and many tests
read its results. Timeouts are shortened so hostile pages cost seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from crawl_support import FEED_KINDS, Crawl, crawl_urls


@pytest.fixture(scope="session")  # shared: test_crawl_catalogue, test_crawl_cloaking
def catalogue_crawl(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    """Every feed-worthy sandbox site (SSRF ones apart), crawled once by ``tocsin crawl``.

    The bundled community rule packs are on (the default), so they are evaluated over
    every page, and any false positive of theirs on a clean site would show.
    """
    folder = tmp_path_factory.mktemp("catalogue-crawl")
    sites = sandbox.select(FEED_KINDS, include_scale=False)
    return crawl_urls(
        sandbox,
        folder,
        {site.id: sandbox.url(site.id) for site in sites},
        timeout=400,
        signatures={"known_bad": str(sandbox.known_bad_path)},  # community packs: on by default
    )

"""``TOCSIN_KEEP_BROWSER`` in-process: crawls one after another borrow one Chromium.

Two crawls of the same pages run with the setting (as a worker's batches do):
both are confirmed by the same connected browser, no browser context is left
open after either (one left over from the first is closed at the end of the
second). A browser closed as the handler closes one a page hung is replaced at
the next crawl, and :func:`crawler.browser.kept.shutdown` closes it.
"""

from __future__ import annotations

from typing import Any

from crawl_support import add_urls, checks_per_url, new_store, sample_sites, sandbox_config

from crawler.browser import kept
from crawler.runner import on_reactor, run_spiders
from crawler.spiders.check import CheckSpider
from tocsin.app import App


async def _open_contexts() -> int:
    return len(kept.KEPT.browser.contexts)


async def _leave_a_context() -> None:
    """A context a crawl failed to close (a page that hung Chromium's close, say)."""
    page = await (await kept.KEPT.browser.new_context()).new_page()
    await page.set_content("<p>left over</p>")


def test_crawls_borrow_one_chromium_and_close_their_contexts(sandbox, tmp_path) -> None:
    # The browser is the store's business nowhere: SQLite alone (test_worker_browser: PostgreSQL).
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    app = App(config_path=sandbox_config(sandbox, tmp_path, db_url))
    sites = sample_sites(clean=1, compromised=1)
    ids = list(add_urls(app.db, [sandbox.url(site) for site in sites]).values())
    spider = (CheckSpider, {"kind": "recheck", "url_ids": ids})
    browsers: list[Any] = []
    try:
        for crawl in range(3):
            if crawl == 2:  # what the handler does to a Chromium a page hung: the next relaunches
                on_reactor(kept.KEPT.browser.close(), 30)
            run_spiders(app, [spider], settings={"TOCSIN_KEEP_BROWSER": True})
            browser = kept.KEPT.browser
            assert browser is not None and browser.is_connected()
            assert on_reactor(_open_contexts(), 10) == 0  # nothing carries to the next crawl
            browsers.append(browser)
            on_reactor(_leave_a_context(), 30)  # the next crawl's end sweeps it away
    finally:
        kept.shutdown()
    assert browsers[0] is browsers[1] and browsers[2] is not browsers[0]
    assert kept.KEPT.provider is None and not browsers[2].is_connected()
    assert checks_per_url(app.db) == dict.fromkeys(ids, 3)
    app.db.dispose()

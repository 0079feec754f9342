"""SEO cloaking in a real crawl: clean pre-rendered shops stay clean, cloaked sites are caught.

The catalogue's one ``tocsin crawl`` (Chromium, the cloaking fetches, the check
worker, community rules on; shared with test_crawl_catalogue) read for the
cloaking cases: the clean
single-page-app shops that serve search engines a pre-rendered copy, in many
languages and with ordinary shop words, and the cloaked sites (a link farm,
foreign-language spam, shown to the bot's user agent or to search referrers
only, control bytes after a ``<script>``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from crawl_support import Crawl
from sqlalchemy import select

from crawler.signatures.markup import extract
from store.evidence import EvidenceStore
from store.models import Check, Evidence
from tocsin.sandbox.catalogue import CATALOGUE

CASES = [s for s in CATALOGUE if s.behaviour in ("fp-shop", "fp-cloak", "seo-cloaking")]
CLEAN = [s for s in CASES if s.kind in ("clean", "tricky-clean")]
CLOAKED = [s for s in CASES if s.kind == "compromised"]


@pytest.fixture
def cloaking_crawl(catalogue_crawl: Crawl) -> Crawl:
    """The catalogue's crawl (session-scoped: one Chromium run for both modules)."""
    return catalogue_crawl


def _check(crawl: Crawl, site_id: str) -> Check:
    with crawl.db.session() as session:
        return session.scalars(select(Check).where(Check.url_id == crawl.ids[site_id])).one()


def test_enough_tricky_clean_shops_in_many_languages() -> None:
    shops = [s for s in CLEAN if s.behaviour == "fp-shop"]
    assert len(shops) >= 12
    assert {"ja", "de", "fr", "es", "pt", "zh", "ko", "ru", "en"} <= {s.lang for s in shops}
    assert len(CLOAKED) >= 6


@pytest.mark.parametrize("site", CLEAN, ids=lambda s: s.id)
def test_pre_rendered_shops_are_clean(cloaking_crawl: Crawl, site: Any) -> None:
    check = _check(cloaking_crawl, site.id)
    assert (check.verdict, check.route) == ("clean", "browser"), (check.rules, check.evidence_lines)
    assert "tocsin.seo-cloaking" not in check.rules


def test_the_bot_copy_really_differs_from_the_plain_fetch(cloaking_crawl: Crawl) -> None:
    """The shops are tricky: the plain copy is an empty shell that Chromium fills in,
    Googlebot's is the pre-rendered page; the check compared the latter two."""
    sandbox = cloaking_crawl.sandbox
    check = _check(cloaking_crawl, "fp-shop-ja")
    assert check.meta["variants"]["bot"]["status"] == 200
    with cloaking_crawl.db.session() as session:
        dom = session.scalars(
            select(Evidence).where(Evidence.check_id == check.id, Evidence.kind == "dom")
        ).one()
    store = EvidenceStore(cloaking_crawl.folder / "evidence", 32 * 1024**2)
    rendered = store.get(dom.sha256).decode()
    site = sandbox.sites["fp-shop-ja"]
    plain = httpx.get(
        f"http://{site.ip}:{sandbox.http_port}/", headers={"Host": site.host}, timeout=10
    ).text
    assert "送料無料キャンペーン" in rendered and "送料無料キャンペーン" not in extract(plain).text


@pytest.mark.parametrize("site", CLOAKED, ids=lambda s: s.id)
def test_cloaked_sites_are_caught(cloaking_crawl: Crawl, site: Any) -> None:
    check = _check(cloaking_crawl, site.id)
    assert (check.verdict, check.family) == ("malicious", "seo-cloaking"), (
        check.rules,
        check.evidence_lines,
        check.error,
    )
    line = next(x for x in check.evidence_lines if "different page than" in x)
    assert "the page Chromium rendered" in line
    who = "visitors coming from" if "referer" in site.tags else "search engines (Googlebot)"
    assert who in line
    if "farm" in site.tags:
        assert "links to" in line and "[.]" in line
    if any(t.startswith("spam:") for t in site.tags):
        assert " spam on a " in line


def test_control_bytes_after_a_script_do_not_hide_the_spam(cloaking_crawl: Crawl) -> None:
    line = next(
        x for x in _check(cloaking_crawl, "fp-cloak-ctrl").evidence_lines if "different" in x
    )
    assert "Russian spam on a Dutch page" in line and "\x00" not in line


def _get(sandbox: Any, site_id: str, **headers: str) -> str:
    site = sandbox.sites[site_id]
    url = f"http://{site.ip}:{sandbox.http_port}/"
    return httpx.get(url, headers={"Host": site.host, **headers}, timeout=10).text


BOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
SEARCH = {"Referer": "https://www.google.com/search?q=site"}


@pytest.mark.parametrize(
    ("site_id", "host", "for_bot", "for_referer"),
    [
        ("fp-cloak-farm-ua", "seo-backlink-hub.net", True, False),
        ("fp-cloak-referer-ja", "replica-watch-store.net", False, True),
        ("fp-cloak-casino-id", "slot-gacor-jackpot.net", False, True),
        ("fp-cloak-ctrl", "slot-gacor-jackpot.net", True, False),
    ],
)
def test_the_spam_is_hidden_behind_the_user_agent_or_the_referer(
    sandbox: Any, site_id: str, host: str, for_bot: bool, for_referer: bool
) -> None:
    assert host not in _get(sandbox, site_id)
    assert (host in _get(sandbox, site_id, **BOT)) is for_bot
    assert (host in _get(sandbox, site_id, **SEARCH)) is for_referer


def test_a_clean_shop_serves_a_shell_to_browsers_and_its_page_to_googlebot(sandbox: Any) -> None:
    shell, bot = _get(sandbox, "fp-shop-de"), _get(sandbox, "fp-shop-de", **BOT)
    assert 'id="app"' in shell and "Rabatt" not in extract(shell).text
    assert "Rabatt" in extract(bot).text and "/item/0/" in bot

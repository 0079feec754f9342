"""SEO cloaking in a real crawl: clean pre-rendered shops stay clean, cloaked sites are caught.

One ``tocsin crawl`` (Chromium, the cloaking fetches, the check worker) over the
cloaking cases of the sandbox catalogue only (module fixture): the clean
single-page-app shops that serve search engines a pre-rendered copy, in many
languages and with ordinary shop words, and the cloaked sites (a link farm,
foreign-language spam, shown to the bot's user agent or to search referrers
only, control bytes after a ``<script>``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from crawl_support import Crawl, add_urls, run_cli, sandbox_config
from sqlalchemy import select

from crawler.signatures.markup import extract
from store.db import Database
from store.evidence import EvidenceStore
from store.models import Check, Evidence
from tocsin.sandbox.catalogue import CATALOGUE
from tocsin.urls import normalise_url

CASES = [s for s in CATALOGUE if s.behaviour in ("fp-shop", "fp-cloak", "seo-cloaking")]
CLEAN = [s for s in CASES if s.kind in ("clean", "tricky-clean")]
CLOAKED = [s for s in CASES if s.kind == "compromised"]


@pytest.fixture(scope="module")
def cloaking_crawl(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    folder = tmp_path_factory.mktemp("cloaking-crawl")
    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(sandbox, folder, db_url)
    db = Database(db_url)
    from store import migrate

    migrate.upgrade(db)
    urls = {site.id: sandbox.url(site.id) for site in CASES}
    by_url = add_urls(db, urls.values())
    ids = {sid: by_url[normalise_url(u)] for sid, u in urls.items()}
    proc = run_cli(folder, config, "--now", "2026-03-02T10:00:00Z", "crawl", timeout=300)
    return Crawl(db, config, folder, proc.returncode, proc.stdout, proc.stderr,
                 {ids[s.id]: s for s in CASES}, ids, sandbox)  # fmt: skip


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

"""Sites behind CDNs known only by ASN or only by AS name: one real crawl (Chromium), then
enrichment reads the origin from the stored evidence where the site gives it away (an
``X-Origin-Server`` header, an image on the origin's address, a link to an ``origin.``
name) and not where it does not; the CDN's abuse desk is told, with the origin or with
"unknown". The store paths of these cases run on both engines in
tests/enrich/test_enrich_contacts.py; this module is about the crawl's evidence.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from pathlib import Path
from typing import Any

import pytest
from crawl_support import T0, add_urls, run_cli, sandbox_config
from sqlalchemy import select

from enrich.service import enrich_sites
from notifier.service import notify
from store import migrate
from store.db import Database
from store.models import Incident, Site
from tocsin.app import App
from tocsin.clock import Clock

SITES = {  # site id -> the origin its evidence reveals (None: nothing does)
    "cdn-asn-no-origin": None,
    "cdn-asn-origin-header": ("127.10.7.226", "x-origin-server header"),
    "cdn-asname-origin-asset": ("127.10.7.227", "an asset URL on the address"),
    "cdn-asname-origin-link": ("origin.quarry-lane-books.com", "a link to an origin name"),
}
# The clean site behind a CDN with its origin in view (clean-cdn-origin-asset) is crawled,
# and stays clean, in test_crawl_catalogue.py: an origin hint is no sign of compromise.


@pytest.fixture(scope="module")
def cdn_crawl(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("cdn-crawl")
    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(
        sandbox, folder, db_url, notify={"max_evidence_age": "30d"}, rdap={"rate_per_server": 200}
    )
    db = Database(db_url)
    migrate.upgrade(db)
    add_urls(db, [sandbox.url(sid) for sid in SITES])
    proc = run_cli(folder, config, "--now", T0.isoformat(), "crawl", timeout=300)
    app = App(config_path=config, clock=Clock(frozen=T0))
    app.__dict__["db"] = db
    summary = enrich_sites(app)
    report = notify(app)
    return {"db": db, "proc": proc, "summary": summary, "report": report, "folder": folder}


def _site(db: Database, sandbox: Any, sid: str) -> Site:
    with db.session() as s:
        site = s.scalars(select(Site).where(Site.host == sandbox.sites[sid].host)).one()
        s.expunge(site)
        return site


def test_the_cdn_sites_are_judged_as_the_catalogue_says(cdn_crawl, sandbox) -> None:
    assert cdn_crawl["proc"].returncode == 0, cdn_crawl["proc"].stderr[-2000:]
    with cdn_crawl["db"].session() as s:
        open_sites = set(s.scalars(select(Site.host).join(Incident, Incident.site_id == Site.id)))
    for sid in SITES:
        spec = sandbox.sites[sid]
        assert (spec.host in open_sites) == (spec.verdict == "malicious"), sid


@pytest.mark.parametrize("sid", list(SITES))
def test_the_origin_is_read_from_the_evidence_where_revealed(cdn_crawl, sandbox, sid) -> None:
    site = _site(cdn_crawl["db"], sandbox, sid)
    provider = sandbox.providers[sandbox.sites[sid].provider]
    assert site.cdn == ("Kestrel Edge" if provider.id == "kestrel" else provider.name), sid
    found = site.meta["enrich"]["cdn_origin"]
    if SITES[sid] is None:
        assert found is None
    else:
        origin, how = SITES[sid]
        assert found["origin"] == origin and how in found["evidence"], found


def test_the_cdn_desks_are_told_with_the_origin_or_that_it_is_unknown(cdn_crawl) -> None:
    assert not cdn_crawl["report"].failed
    sent: dict[str, str] = {}
    for raw in mailbox.Maildir(Path(cdn_crawl["folder"]) / "outbox", factory=None, create=False):
        msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        sent[str(msg["To"]).lower()] = " ".join(body.get_content().split()) if body else ""
    kestrel = sent["abuse@kestrel-networks.se"]  # one notice: a site with, one without
    assert "origin host behind the CDN appears to be 127[.]10[.]7[.]226" in kestrel
    assert "origin host behind the CDN is unknown" in kestrel
    nimbus = sent["abuse@nimbus-edge.ie"]
    assert "127[.]10[.]7[.]227" in nimbus and "origin[.]quarry-lane-books[.]com" in nimbus
    assert "is unknown" not in nimbus

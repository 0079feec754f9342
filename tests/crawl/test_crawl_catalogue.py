"""One ``tocsin crawl`` of the sandbox catalogue, and what it must conclude.

Every compromised kind is malicious with its own family, no clean site (tricky
ones included) is flagged, offline sites are offline, hostile pages end in
``error`` with a reason while the crawl goes on; evidence, sites, campaigns,
incidents and events are stored. The crawl runs once (module fixture).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from store.evidence import EvidenceStore, unzip_payload
from store.models import Campaign, Check, Event, Evidence, Incident, IncidentUrl, Site, Url
from tocsin.sandbox.catalogue import CATALOGUE

FEED = [s for s in CATALOGUE if s.kind in ("compromised", "payload", "clean", "tricky-clean")]
COMPROMISED = [
    s for s in CATALOGUE if s.kind in ("compromised", "payload") and s.verdict == "malicious"
]
# Executables alone (a vendor's installers, its download page): suspicious, no incident.
SUSPICIOUS = [s for s in CATALOGUE if s.verdict == "suspicious"]
CLEAN = [s for s in CATALOGUE if s.kind in ("clean", "tricky-clean") and s.verdict == "clean"]
OFFLINE = [s for s in CATALOGUE if s.kind == "offline"]
HOSTILE_REASONS = {
    "hostile-infinite-loop": "did not load",
    "hostile-alert-loop": "alert() loop",
    "hostile-1gb": "larger than",
    "hostile-gzip-bomb": "decompressed",
    "hostile-redirect-loop": "redirect loop",
    "hostile-slow-drip": "timed out",
    "hostile-popup-storm": "popup storm",
}


def _check(crawl, site_id: str) -> Check:
    with crawl.db.session() as session:
        return session.scalars(
            select(Check).where(Check.url_id == crawl.ids[site_id]).order_by(Check.id.desc())
        ).first()


def _url(crawl, site_id: str) -> Url:
    with crawl.db.session() as session:
        return session.get(Url, crawl.ids[site_id])


def test_the_crawl_ran_every_url_and_exits_1_for_errors(catalogue_crawl) -> None:
    crawl = catalogue_crawl
    assert crawl.returncode == 1, crawl.stderr[-3000:]  # the hostile pages end in error
    with crawl.db.session() as session:
        urls = session.scalars(select(Url)).all()
        assert urls and all(u.verdict != "pending" for u in urls)
        assert all(u.check_count == 1 and u.last_checked is not None for u in urls)
    # The closing table counts verdicts by family.
    assert "malicious" in crawl.stdout and "card-skimmer" in crawl.stdout
    assert "error: " in crawl.stderr and "trapdoor-games" in crawl.stderr
    # ... and how many pages each community pack (on by default) matched, as stored.
    with crawl.db.session() as session:
        stored = session.scalars(select(Check.rules)).all()
    for pack in ("fiddleitm", "iok"):
        pages = sum(1 for rules in stored if any(r.startswith(f"{pack}:") for r in rules))
        row = re.search(rf"│ {pack}\s+│ snapshot 20\d\d-\d\d-\d\d\s+│\s+(\d+) │", crawl.stdout)
        assert row and int(row[1]) == pages, crawl.stdout[-2000:]


@pytest.mark.parametrize("site", COMPROMISED, ids=lambda s: s.id)
def test_every_compromised_kind_is_malicious_with_its_family(catalogue_crawl, site) -> None:
    check = _check(catalogue_crawl, site.id)
    assert (check.verdict, check.family) == ("malicious", site.family), check.evidence_lines
    assert check.rules and check.confidence and check.confidence >= 0.8
    assert check.evidence_lines and any("[.]" in line for line in check.evidence_lines)
    assert any(check.iocs.get(kind) for kind in ("domains", "urls", "sha256"))
    url = _url(catalogue_crawl, site.id)
    assert (url.verdict, url.family, url.site_id) == ("malicious", site.family, url.site_id)
    assert url.site_id is not None and url.next_check_at is None


@pytest.mark.parametrize("site", SUSPICIOUS, ids=lambda s: s.id)
def test_executables_alone_are_suspicious_without_an_incident(catalogue_crawl, site) -> None:
    check = _check(catalogue_crawl, site.id)
    route = "payload" if site.kind == "payload" else "browser"
    assert (check.verdict, check.route) == ("suspicious", route), check.rules
    assert "nothing else marks it as malware" in check.evidence_lines[0]
    url = _url(catalogue_crawl, site.id)
    assert url.verdict == "suspicious" and url.site_id is None
    with catalogue_crawl.db.session() as session:
        assert not session.scalars(select(IncidentUrl).where(IncidentUrl.url_id == url.id)).all()


@pytest.mark.parametrize("site", CLEAN, ids=lambda s: s.id)
def test_no_clean_site_is_flagged(catalogue_crawl, site) -> None:
    check = _check(catalogue_crawl, site.id)
    assert check.verdict == "clean", (check.rules, check.evidence_lines)
    assert check.route == "browser"


@pytest.mark.parametrize("site", OFFLINE, ids=lambda s: s.id)
def test_offline_sites_are_offline(catalogue_crawl, site) -> None:
    check = _check(catalogue_crawl, site.id)
    assert (check.verdict, check.route) == ("offline", "offline")
    assert check.route_reason


@pytest.mark.parametrize("site_id", sorted(HOSTILE_REASONS))
def test_hostile_pages_are_errors_with_a_reason(catalogue_crawl, site_id) -> None:
    check = _check(catalogue_crawl, site_id)
    assert check.verdict == "error"
    assert HOSTILE_REASONS[site_id] in (check.error or "") + (check.route_reason or ""), check.error
    url = _url(catalogue_crawl, site_id)
    assert url.verdict == "error" and url.next_check_at is not None  # tried again later


def test_routes_and_reasons_are_recorded(catalogue_crawl) -> None:
    assert _check(catalogue_crawl, "payload-pe-as-png").route == "payload"
    reason = _check(catalogue_crawl, "payload-pe-as-png").route_reason
    assert "PE32" in reason and "image/png" in reason
    assert _check(catalogue_crawl, "payload-zip-as-html").route == "payload"
    assert _check(catalogue_crawl, "offline-dns").route_reason.startswith("DNS")
    assert _check(catalogue_crawl, "offline-refused").route_reason == "connection refused"
    assert _check(catalogue_crawl, "offline-404").route_reason == "HTTP 404"
    redirect = _check(catalogue_crawl, "clean-https-redirect")
    assert [hop["status"] for hop in redirect.redirect_chain] == [301, 200]
    assert redirect.final_url.startswith("https://")


def test_evidence_lines_say_what_where_and_by_whom(catalogue_crawl) -> None:
    injected = _check(catalogue_crawl, "injected-script").evidence_lines[0]
    assert "apiscdn-metrics[.]com" in injected and "injected into /" in injected
    assert "jquery-migrate.min.js" in injected and "at line" in injected
    delayed = _check(catalogue_crawl, "delayed-injection").evidence_lines[0]
    assert "inline script at line" in delayed and "clock" in delayed
    skimmer = " ".join(_check(catalogue_crawl, "card-skimmer").evidence_lines)
    assert "analytics-googlecdn[.]com" in skimmer and "test card data" in skimmer
    iframe = _check(catalogue_crawl, "hidden-iframe-display-none").evidence_lines[0]
    assert "display:none" in iframe and "tds-gateway[.]net" in iframe
    miner = _check(catalogue_crawl, "cryptominer").evidence_lines[0]
    assert "WebSocket" in miner and "mining protocol" in miner
    meta = _check(catalogue_crawl, "malicious-redirect-meta").evidence_lines[0]
    assert "meta refresh" in meta and "prize-winner-today[.]net" in meta


def test_evidence_blobs_are_content_addressed_and_payloads_zipped(catalogue_crawl) -> None:
    crawl = catalogue_crawl
    store = EvidenceStore(crawl.folder / "evidence", 32 * 1024**2)
    with crawl.db.session() as session:
        rows = session.scalars(select(Evidence)).all()
        kinds = Counter(row.kind for row in rows)
        assert kinds["screenshot"] and kinds["dom"] and kinds["requests"] and kinds["payload_zip"]
        for row in rows:
            path = store.path_for(row.sha256)
            assert path.relative_to(store.root).parts[:2] == (row.sha256[:2], row.sha256[2:4])
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        shot = next(r for r in rows if r.kind == "screenshot")
        assert store.get(shot.sha256).startswith(b"\x89PNG")
        # A payload's zip opens with "infected" and holds exactly the bytes that were served.
        check = session.scalars(select(Check).where(Check.url_id == crawl.ids["payload-pe"])).one()
        zipped = session.scalars(
            select(Evidence).where(Evidence.check_id == check.id, Evidence.kind == "payload_zip")
        ).one()
        members = unzip_payload(store.get(zipped.sha256))
        (content,) = members.values()
        assert hashlib.sha256(content).hexdigest() == check.payload_sha256 == zipped.content_sha256
        # The same PE served as .png is the same payload: its zip blob is reused.
        other = session.scalars(
            select(Check).where(Check.url_id == crawl.ids["payload-pe-as-png"])
        ).one()
        assert other.payload_sha256 == check.payload_sha256
        again = session.scalars(
            select(Evidence).where(Evidence.check_id == other.id, Evidence.kind == "payload_zip")
        ).one()
        assert again.sha256 == zipped.sha256
        # The drive-by download is captured too.
        driveby = session.scalars(
            select(Check).where(Check.url_id == crawl.ids["drive-by-download"])
        ).one()
        assert driveby.iocs["sha256"]
        assert session.scalars(
            select(Evidence).where(Evidence.check_id == driveby.id, Evidence.kind == "payload_zip")
        ).first()
    assert not list(Path(store.root).rglob(".tmp-*"))


def test_sites_campaigns_and_incidents(catalogue_crawl) -> None:
    crawl = catalogue_crawl
    with crawl.db.session() as session:
        malicious_hosts = {s.host for s in COMPROMISED}
        sites = {s.host: s for s in session.scalars(select(Site))}
        assert set(sites) == malicious_hosts
        assert sites["www.sakura-wagashi.co.jp"].registered_domain == "sakura-wagashi.co.jp"
        assert all(s.enrich_state == "pending" for s in sites.values())

        def campaign_of(site_id: str) -> Campaign:
            return session.scalars(
                select(Campaign)
                .join(Incident, Incident.campaign_id == Campaign.id)
                .join(IncidentUrl, IncidentUrl.incident_id == Incident.id)
                .where(IncidentUrl.url_id == crawl.ids[site_id])
            ).one()

        # The JS and the meta redirect lead to the same landing: one campaign.
        assert campaign_of("malicious-redirect").id == campaign_of("malicious-redirect-meta").id
        assert campaign_of("hidden-iframe").id == campaign_of("hidden-iframe-display-none").id
        # The same payload served under two names: one campaign.
        assert campaign_of("payload-pe").id == campaign_of("payload-pe-as-png").id
        assert campaign_of("injected-script").id != campaign_of("delayed-injection").id
        redirect = campaign_of("malicious-redirect")
        assert redirect.family == "malicious-redirect"
        assert "host:prize-winner-today.net" in redirect.iocs["keys"]
        assert redirect.first_seen <= redirect.last_seen
        incidents = session.scalars(select(Incident)).all()
        assert all(i.state == "open" and i.level == 0 for i in incidents)
        # one incident per site, whatever families its URLs show (issue 11 point 5)
        assert len({i.site_id for i in incidents}) == len(incidents)
        kinds = Counter(e.kind for e in session.scalars(select(Event)))
        assert kinds["check.completed"] == len(crawl.sites)
        assert kinds["incident.opened"] == len(incidents)
        assert kinds["site.created"] == len(sites) and kinds["campaign.created"]


def test_browser_record_is_complete_enough_to_rest_a_notice_on(catalogue_crawl) -> None:
    check = _check(catalogue_crawl, "fake-update")
    browser = check.meta["browser"]
    assert browser["requests"] >= 3 and browser["clock_advanced_ms"] >= 300_000
    assert browser["steps"][-1].startswith("collected@")
    popup = _check(catalogue_crawl, "hostile-popup-storm")
    assert popup.meta["browser"]["popups"] > 10
    alerts = _check(catalogue_crawl, "hostile-alert-loop")
    assert alerts.meta["browser"]["dialogs"] > 20

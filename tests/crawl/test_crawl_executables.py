"""Issue 11 point 8: executables alone are not compromise.

A vendor's installers (PE, MSI, APK, ELF; a PE as octet-stream on another vendor)
are ``suspicious``: no incident, no notice. The same kinds of file with a SHA-256
on the known-bad list, or matched by a detection rule, are malicious and notified;
a plain installer served by a site with an open incident is malicious and joins
that incident. The real crawl (payload URLs need no browser), the sandbox's RDAP
for enrichment, the notifier into an outbox; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from crawl_support import add_urls, sandbox_config
from sqlalchemy import select

from crawler.runner import check_urls, crawl_due
from crawler.signatures.knownbad import KnownBad
from enrich.service import enrich_sites
from notifier.service import notify
from store.models import Incident, IncidentUrl, Notice, NoticeItem, Site, Url
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.sandbox import pages_incidents
from tocsin.urls import normalise_url

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
VENDOR = [
    "vendor-installer-exe",
    "vendor-installer-msi",
    "vendor-installer-apk",
    "vendor-installer-elf",
    "vendor-installer-octet",
]
BAD = {
    "known-bad-installer-exe": "tocsin.known-bad-hash",
    "known-bad-installer-msi": "tocsin.known-bad-hash",
    "rule-installer-elf": "yara.payloads.iot_bot_binary",
    "rule-installer-exe": "yara.payloads.powershell_cradle",
}
LONE = "/support/tools/MeshLink-Updater.exe"  # on the rule-matched (compromised) host


def test_known_bad_list_reads_sha256_lines() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    bad = KnownBad(["example.net", f"sha256:{digest.upper()}  # a trojanised build", "1" * 64])
    assert bad.match_sha256(digest) and bad.match_sha256("1" * 64)
    assert not bad.match_sha256("2" * 64) and not bad.match_sha256(None)
    assert bad.match_host("www.example.net") == "example.net"
    assert bad.match_host(digest) is None  # a hash is not a domain


@pytest.mark.pg
def test_installers_alone_are_suspicious_and_not_notified(sandbox, tmp_path, db_url) -> None:
    config = sandbox_config(
        sandbox, tmp_path, db_url, notify={"mode": "outbox", "journal": str(tmp_path / "j.log")}
    )
    app = App(config_path=config, clock=Clock(frozen=T0))
    sites = [*VENDOR, *BAD]
    by_url = add_urls(app.db, [sandbox.url(sid) for sid in sites])
    ids = {sid: by_url[normalise_url(sandbox.url(sid))] for sid in sites}

    outcomes, _ = crawl_due(app)
    for sid in VENDOR:
        outcome = outcomes[ids[sid]]
        assert (outcome.verdict, outcome.family) == ("suspicious", "malware-download"), sid
        assert outcome.incident_id is None and outcome.route == "payload", sid
    for sid, rule in BAD.items():
        outcome = outcomes[ids[sid]]
        assert (outcome.verdict, outcome.family) == ("malicious", "malware-download"), sid
        assert rule in outcome.rules and outcome.incident_id, (sid, outcome.rules)
    # The two rule-matched files share a host: one incident, one ticket.
    rule_incidents = {outcomes[ids[sid]].incident_id for sid in BAD if sid.startswith("rule")}
    assert len(rule_incidents) == 1

    enrich_sites(app)
    assert notify(app).send.sent > 0
    with app.db.session() as session:
        notified = set(
            session.scalars(
                select(Site.host)
                .join(Incident, Incident.site_id == Site.id)
                .join(NoticeItem, NoticeItem.incident_id == Incident.id)
                .join(Notice, Notice.id == NoticeItem.notice_id)
                .where(Notice.state == "sent")
            )
        )
        vendors = {sandbox.sites[sid].host for sid in VENDOR}
        assert notified == {sandbox.sites[sid].host for sid in BAD}
        assert not notified & vendors
        assert not session.scalars(
            select(Incident).join(Site, Site.id == Incident.site_id).where(Site.host.in_(vendors))
        ).all()
        assert {u.verdict for u in session.scalars(select(Url).where(Url.host.in_(vendors)))} == {
            "suspicious"
        }

    # A plain installer on the compromised host: malicious, and in the site's incident.
    # The same file on a vendor's site (the sandbox serves it there too) stays alone.
    origin = sandbox.url("rule-installer-elf").split("/support/", 1)[0]
    vendor_origin = sandbox.url("vendor-installer-octet").split("/releases/", 1)[0]
    added = add_urls(app.db, [origin + LONE, vendor_origin + LONE])
    lone, elsewhere = (added[normalise_url(u)] for u in (origin + LONE, vendor_origin + LONE))
    summary = check_urls(app, [lone, elsewhere], kind="triage")
    outcome = summary.outcomes[lone]
    assert outcome.verdict == "malicious" and outcome.family == "malware-download"
    assert "tocsin.payload.on-compromised-site" in outcome.rules
    assert outcome.incident_id in rule_incidents
    assert summary.outcomes[elsewhere].verdict == "suspicious"
    assert summary.outcomes[elsewhere].incident_id is None
    with app.db.session() as session:
        links = session.scalars(
            select(IncidentUrl.url_id).where(IncidentUrl.incident_id == outcome.incident_id)
        ).all()
        assert sorted(links) == sorted([lone, *(ids[s] for s in BAD if s.startswith("rule"))])


def test_the_sandbox_lists_the_trojanised_builds_only(sandbox) -> None:
    listed = KnownBad.load(str(sandbox.known_bad_path)).sha256
    for kind, variant, _, _ in pages_incidents.KNOWN_BAD_FILES.values():
        assert hashlib.sha256(pages_incidents.installer(kind, variant)).hexdigest() in listed
    for kind, variant, _, _ in pages_incidents.VENDOR_FILES.values():
        assert hashlib.sha256(pages_incidents.installer(kind, variant)).hexdigest() not in listed

"""Every exfiltration channel, phishing-kit traces and webshells, in one real crawl.

One ``tocsin crawl`` (real Chromium, the sandbox's loopback internet) over just
this module's sites: skimmers over fetch, XHR, beacon, image, form, WebSocket and
WebRTC data channel; kit listings; bot-exfil phishing; webshells; and their clean
look-alikes, which must stay clean.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from urllib.parse import unquote_plus

import pytest
from crawl_support import add_urls, run_cli, sandbox_config
from sqlalchemy import select

from store.db import Database
from store.evidence import EvidenceStore
from store.models import Check, Evidence
from tocsin.sandbox.catalogue import CATALOGUE
from tocsin.urls import normalise_url

SKIMMERS = {
    "skimmer-fetch": ("fetch()", "fetch"),
    "skimmer-xhr": ("XMLHttpRequest", "xhr"),
    "skimmer-beacon": ("navigator.sendBeacon", "beacon"),
    "skimmer-image": ("an image URL", "image"),
    "skimmer-form": ("a posted form", "form"),
    "skimmer-websocket": ("a WebSocket", "websocket"),
    "skimmer-webrtc": ("a WebRTC data channel", "webrtc"),
}
KITS = {
    "kit-listing-apache": "tocsin.phishing.kit-listing",
    "kit-listing-nginx": "tocsin.phishing.kit-listing",
    "phishing-telegram": "tocsin.phishing.bot-exfil",
    "phishing-discord": "tocsin.phishing.bot-wired",
    "phishing-slack": "tocsin.phishing.bot-exfil",
}
SHELLS = ("webshell-wso", "webshell-b374k", "webshell-alfa")
CLEAN = (
    "clean-shop-own-socket",
    "clean-shop-stripe",
    "docs-listing-apache",
    "docs-listing-nginx",
    "clean-filemanager-login",
)
SITES = [*SKIMMERS, *KITS, *SHELLS, *CLEAN]


@pytest.fixture(scope="module")
def exfil_crawl(sandbox, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exfil-crawl")
    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(sandbox, folder, db_url)
    db = Database(db_url)
    from store import migrate

    migrate.upgrade(db)
    sandbox.reset()
    urls = {sid: sandbox.url(sid) for sid in SITES}
    by_url = add_urls(db, urls.values())
    ids = {sid: by_url[normalise_url(u)] for sid, u in urls.items()}
    proc = run_cli(folder, config, "--now", "2026-03-02T10:00:00Z", "crawl", timeout=300)
    checks = {}
    with db.session() as session:
        for sid, url_id in ids.items():
            checks[sid] = session.scalars(
                select(Check).where(Check.url_id == url_id).order_by(Check.id.desc())
            ).first()
            session.expunge(checks[sid])
        logs = {}
        store = EvidenceStore(folder / "evidence", 32 * 1024**2)
        for sid, check in checks.items():
            row = session.scalars(
                select(Evidence).where(Evidence.check_id == check.id, Evidence.kind == "requests")
            ).first()
            logs[sid] = json.loads(store.get(row.sha256)) if row else {}
    return {"proc": proc, "checks": checks, "logs": logs, "gates": sandbox.attacker_log}


def test_every_site_is_in_the_catalogue_with_its_expectation() -> None:
    ids = {s.id: s for s in CATALOGUE}
    for sid in SITES:
        assert sid in ids
    assert {ids[s].family for s in SKIMMERS} == {"card-skimmer"}
    assert {ids[s].family for s in SHELLS} == {"webshell"}
    assert {ids[s].verdict for s in CLEAN} == {"clean"}


@pytest.mark.parametrize("site", list(SKIMMERS), ids=str)
def test_each_skimmer_channel_is_caught_with_its_channel_named(exfil_crawl, site) -> None:
    check = exfil_crawl["checks"][site]
    assert (check.verdict, check.family) == ("malicious", "card-skimmer"), check.evidence_lines
    assert check.confidence >= 0.95  # the test card itself was seen leaving, not a guess
    said, channel = SKIMMERS[site]
    lines = " ".join(check.evidence_lines)
    assert f"by {said}" in lines and "test card data" in lines
    events = exfil_crawl["logs"][site]["browser"]["exfil"]
    assert any(e["channel"] == channel for e in events), [e["channel"] for e in events]


def _decoded(data: str) -> str:
    """What a gate received, with URL, base64 and hex layers taken off (test-side)."""
    text = unquote_plus(data)
    out = [text]
    for token in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", text):
        with contextlib.suppress(ValueError):
            out.append(base64.b64decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace"))
    for token in re.findall(r"(?:[0-9a-f]{2}){16,}", text):
        out.append(bytes.fromhex(token).decode("utf-8", "replace"))
    return " ".join(out)


def test_the_card_really_reached_the_attacker_over_the_wire(exfil_crawl) -> None:
    """Every channel that can deliver in the sandbox did: the skimmers are real, not props."""
    gates = ("cdn-assetsync.com", "img-pixelstat.net", "wss-checkout-sync.com")
    got = {
        (entry["host"], entry["path"].split("?")[0])
        for entry in exfil_crawl["gates"]
        if entry["what"] == "exfil"
        and entry["host"] in gates
        and "4111111111111111" in _decoded(str(entry.get("data") or ""))
    }
    assert {path for _, path in got} >= {
        "/api/v2/collect",
        "/jquery.min.map",
        "/b/metrics",
        "/px.gif",
        "/submit.php",
        "/socket/checkout",
    }, got


def test_webrtc_send_is_recorded_with_its_turn_relay(exfil_crawl) -> None:
    check = exfil_crawl["checks"]["skimmer-webrtc"]
    assert "turn.rtc-mediarelay.net" in check.iocs.get("domains", [])
    sent = exfil_crawl["logs"]["skimmer-webrtc"]["browser"]["datachannels"]
    assert sent and any("turn:turn.rtc-mediarelay.net" in s for s in sent[0]["servers"])
    assert sent[0]["label"] == "sync"


def test_skimmers_stay_silent_off_the_checkout_path(exfil_crawl) -> None:
    """Only checkout paths load them: the shop's own pages send nothing to the gates."""
    paths = [e["path"] for e in exfil_crawl["gates"] if e["host"] == "cdn-assetsync.com"]
    assert paths and all(
        p.startswith(("/api/v2/collect", "/jquery.min.map", "/b/metrics")) for p in paths
    )


@pytest.mark.parametrize("site", list(KITS), ids=str)
def test_kit_listings_and_bot_exfil_are_phishing(exfil_crawl, site) -> None:
    check = exfil_crawl["checks"][site]
    assert (check.verdict, check.family) == ("malicious", "phishing"), check.evidence_lines
    events = exfil_crawl["logs"][site].get("browser", {}).get("exfil")
    assert KITS[site] in check.rules, (check.rules, events)
    assert check.iocs.get("urls")


def test_kit_listing_names_the_archives(exfil_crawl) -> None:
    apache = " ".join(exfil_crawl["checks"]["kit-listing-apache"].evidence_lines)
    assert "Office365-Login-2024.zip" in apache and "dhl_tracking_kit.zip" in apache
    nginx = " ".join(exfil_crawl["checks"]["kit-listing-nginx"].evidence_lines)
    assert "scampage_v3.rar" in nginx and "Netflix" in nginx


def test_bot_exfil_names_the_bot(exfil_crawl) -> None:
    telegram = " ".join(exfil_crawl["checks"]["phishing-telegram"].evidence_lines)
    assert "Telegram bot" in telegram and "api[.]telegram[.]org" in telegram
    discord = " ".join(exfil_crawl["checks"]["phishing-discord"].evidence_lines)
    assert "Discord webhook" in discord and "verify.js" in discord
    slack = " ".join(exfil_crawl["checks"]["phishing-slack"].evidence_lines)
    assert "Slack webhook" in slack and "beacon" in slack


@pytest.mark.parametrize("site", SHELLS, ids=str)
def test_webshells_are_their_own_family(exfil_crawl, site) -> None:
    check = exfil_crawl["checks"][site]
    assert (check.verdict, check.family) == ("malicious", "webshell"), check.evidence_lines
    assert "tocsin.webshell" in check.rules
    assert any(r.startswith("yara.webshell.") for r in check.rules), check.rules
    assert "webshell" in check.evidence_lines[0]


@pytest.mark.parametrize("site", CLEAN, ids=str)
def test_clean_look_alikes_stay_clean(exfil_crawl, site) -> None:
    check = exfil_crawl["checks"][site]
    assert check.verdict == "clean", (check.rules, check.evidence_lines)
    assert check.route == "browser"


def test_clean_shops_really_sent_the_card(exfil_crawl) -> None:
    """The look-alikes are tested doing the thing, not idle: the card left, to their own."""
    own = exfil_crawl["logs"]["clean-shop-own-socket"]["browser"]["exfil"]
    assert any(e["channel"] == "websocket" and "4111111111111111" in e["data"] for e in own)
    stripe = exfil_crawl["logs"]["clean-shop-stripe"]["browser"]["exfil"]
    assert any(e["host"] == "api.stripe.com" and "4111111111111111" in e["data"] for e in stripe)

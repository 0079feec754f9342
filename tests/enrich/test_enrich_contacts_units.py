"""Untrusted input on issue 11's paths: an RDAP ``up`` link to a server the bootstrap does
not list, security.txt web-form values, origin hints from headers and pages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from enrich.origin import clean_origin, origin_hints, origin_in_text
from enrich.rdap import NetworkInfo, RdapClient, load_bootstrap
from enrich.rdap_parent import ParentWalk
from enrich.securitytxt import parse, web_form
from tocsin.config import RdapConfig


def _bootstrap(tmp_path: Path) -> Path:
    table = {"services": [[["192.0.2.0/24"], ["https://rdap.example.net/"]]], "version": "1.0"}
    for name in ("ipv4", "ipv6", "asn", "dns"):
        (tmp_path / f"{name}.json").write_text(json.dumps(table if name == "ipv4" else {}))
    return tmp_path


def test_an_up_link_off_the_bootstrap_is_a_gap_never_a_request(tmp_path: Path) -> None:
    config = RdapConfig(bootstrap_dir=str(_bootstrap(tmp_path)))
    raw = {
        "handle": "NET-192-0-2-0-24",
        "parentHandle": "NET-192-0-0-0-16",
        "links": [{"rel": "up", "href": "http://127.0.0.1:9/ip/192.0.0.0/16"}],
    }

    async def walk() -> tuple[NetworkInfo, int]:
        async with RdapClient(config, bootstrap=load_bootstrap(config.bootstrap_dir)) as client:
            info = NetworkInfo(handle="NET-192-0-2-0-24", cidrs=["192.0.2.0/24"])
            url = "https://rdap.example.net/ip/192.0.2.7"
            found = await ParentWalk(client, info, raw, url).run()
            return found, sum(s.requests for s in client.servers.values())

    found, requests = asyncio.run(walk())
    assert found.abuse_email == "" and "refusing http://127.0.0.1:9" in found.abuse_gap
    assert requests == 0


@pytest.mark.parametrize(
    "value",
    [
        "http://example.com/report",  # not https
        "https://user:pw@example.com/report",  # credentials
        'https://example.com/r"><script>',  # markup
        "https://example.com/a b",  # a space
        "https://example.com/\r\nBcc: x@y.z",  # a header line
        "https://" + "a" * 400 + ".com/",  # too long
        "javascript:alert(1)",
    ],
)
def test_bad_web_forms_are_dropped(value: str) -> None:
    assert web_form(value) == ""


def test_security_txt_keeps_forms_and_mailboxes_apart() -> None:
    from datetime import UTC, datetime

    body = (
        b"Contact: https://shop.example/report?x=1\n"
        b"Contact: https://evil@shop.example/\n"
        b"Contact: mailto:security@shop.example\n"
        b"Contact: tel:+1-555-0100\n"
        b"Expires: 2020-01-01T00:00:00Z\n"
    )
    parsed = parse(body, "https://shop.example/.well-known/security.txt", datetime.now(UTC))
    assert parsed.web_forms == ["https://shop.example/report?x=1"]
    assert parsed.emails == ["security@shop.example"]
    assert parsed.expired and parsed.confidence == 0.4 and not parsed.usable


def test_origin_hints_are_hosts_or_addresses_only() -> None:
    headers = {
        "X-Origin-Server": b"203.0.113.9:8080",
        "X-Backend-Server": "<script>alert(1)</script>",
        "X-Origin": "origin.shop.example",
    }
    assert origin_hints(headers) == {
        "x-origin": "origin.shop.example",
        "x-origin-server": "203.0.113.9",
    }
    assert clean_origin("http://[2001:db8::1]:80/x") == "2001:db8::1"
    assert clean_origin("no spaces allowed.com") == ""


def test_a_page_reveals_an_origin_only_through_its_own_assets_or_names() -> None:
    site = SimpleNamespace(
        host="www.shop.example", registered_domain="shop.example", ips=["1.2.3.4"]
    )
    loader = '<script src="http://198.51.100.7/js/stat.js"></script>'  # an attacker's IP
    assert origin_in_text(loader, site) is None
    own = '<img src="http://1.2.3.4/wp-content/a.png">'  # the CDN edge address itself
    assert origin_in_text(own, site) is None
    asset = '<img src="http://198.51.100.8/wp-content/uploads/a.png">'
    assert origin_in_text(asset, site)[0] == "198.51.100.8"
    elsewhere = '<a href="https://origin.other.example/">'  # not under the site's domain
    assert origin_in_text(elsewhere, site) is None
    link = '<a href="https://direct.shop.example/about/">'
    assert origin_in_text(link, site)[0] == "direct.shop.example"

"""URL normalisation: the library's normal form, reasons for refusals, and the helpers."""

from __future__ import annotations

import random

import pytest
from url_normalize import url_normalize

from tocsin.errors import InvalidUrl
from tocsin.urls import (
    URL_REASONS,
    _normalise,
    defang,
    host_of,
    normalise_url,
    normalise_url_host,
    url_hash,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("HTTP://Example.COM:80/a", "http://example.com/a"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443", "https://example.com:8443/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://BÜCHER.example/Ä", "http://xn--bcher-kva.example/%C3%84"),
        ("http://example.com/a#frag", "http://example.com/a"),
        ("http://example.com/%7e%41%2f?q=%7e&&r=%2B", "http://example.com/~A%2F?q=~&r=%2B"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("  http://example.com/x  ", "http://example.com/x"),
        ("example.com/x", "http://example.com/x"),
        ("example.com:8080/x", "http://example.com:8080/x"),
        ("198.51.100.7/bins/mozi.m", "http://198.51.100.7/bins/mozi.m"),
        ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
        ("http://user:pw@Example.com/", "http://user:pw@example.com/"),
        ("http://example.com./", "http://example.com/"),
        ("http:/example.com/x", "http://example.com/x"),
    ],
)
def test_normal_forms(raw: str, normal: str) -> None:
    assert normalise_url(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "no-url"),
        ("   ", "no-url"),
        ("not a url", "no-url"),
        ("localhost", "no-url"),
        ("javascript:alert(1)", "bad-scheme"),
        ("data:text/html,<script>alert(1)</script>", "bad-scheme"),
        ("ftp://files.example/x", "bad-scheme"),
        ("hxxp://example[.]com/", "bad-scheme"),
        ("mailto:a@example.com", "bad-scheme"),
        ("http://", "bad-host"),
        ("http://:80/", "bad-host"),
        ("http://exa mple.com/", "bad-host"),
        ("http://[::1/", "bad-host"),
        ("http://[zz]/", "bad-host"),
        ("http://0x7f.1/", "bad-host"),
        ("http://2130706433/", "bad-host"),
        ("http://1.2.3.04/", "bad-host"),
        ("http://" + "a" * 64 + ".example/", "bad-host"),
        ("http://example.com:0/", "bad-port"),
        ("http://example.com:99999/", "bad-port"),
        ("http://example.com:8o/", "bad-port"),
        ("http://nul\x00.example/", "nul-byte"),
        ("http://example.com/\rx", "control-char"),
        ("http://example.com/\tx", "control-char"),
    ],
)
def test_refusals_carry_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        normalise_url(raw)
    assert caught.value.reason == reason
    assert reason in URL_REASONS


def test_too_long_once_normalised() -> None:
    url = "http://example.com/" + "é" * 100  # 2 bytes each, 6 characters once escaped
    assert len(normalise_url(url)) == 619
    with pytest.raises(InvalidUrl, match="too-long"):
        normalise_url(url, max_length=600)


def test_helpers() -> None:
    url = normalise_url("HTTP://Shop.Example.ORG:8080/Checkout?x=1")
    assert url == "http://shop.example.org:8080/Checkout?x=1"
    assert host_of(url) == "shop.example.org"
    assert host_of("http://[2001:db8::1]:8080/") == "2001:db8::1"
    assert normalise_url_host("http://[2001:db8::1]/")[1] == "2001:db8::1"
    assert url_hash(url) == url_hash("http://shop.example.org:8080/Checkout?x=1")
    assert len(url_hash(url)) == 64 and url_hash(url) != url_hash(url + "&")
    assert defang("http://example.com/x") == "hxxp://example[.]com/x"
    assert defang("https://user@a.b.example:8443/p.php?q=a.b") == (
        "hxxps://user[@]a[.]b[.]example:8443/p.php?q=a.b"
    )
    assert defang("198.51.100.7/bins") == "198[.]51[.]100[.]7/bins"


def _random_url(rng: random.Random) -> str:
    def pick(*choices: str) -> str:
        return rng.choice(choices)

    scheme = pick("http", "https", "HTTP", "Https")
    labels = [
        "".join(rng.choice("abcXYZ019-") for _ in range(rng.randint(1, 8))).strip("-") or "a"
        for _ in range(rng.randint(1, 3))
    ]
    host = ".".join([*labels, pick("com", "example", "ORG", "xn--p1ai", "рф", "bücher")])
    if rng.random() < 0.1:
        host = pick("198.51.100.7", "203.0.113.250", "[2001:db8::1]", "[::FFFF:1.2.3.4]")
    port = pick("", "", ":80", ":443", ":8080", ":0080", ":65535")
    segments = [
        pick("a", "B", ".", "..", "", "%7e", "%2F", "%41", "x y", "é", "~u", "@", ":", "a;b", "%zz")
        for _ in range(rng.randint(0, 5))
    ]
    path = "/" + "/".join(segments) if segments or rng.random() < 0.7 else ""
    query = ""
    if rng.random() < 0.5:
        params = [
            pick("a=1", "b", "=x", "", "c=%7E", "d=e=f", "g+h=i j", "k=l/m?n", "é=ü", "o=%26")
            for _ in range(rng.randint(0, 4))
        ]
        query = "?" + "&".join(params)
    fragment = pick("", "", "#x", "#!/y")
    return f"{scheme}://{host}{port}{path}{query}{fragment}"


def test_shortcuts_give_exactly_the_library_result() -> None:
    """Every URL normalises exactly as url-normalize does (the fragment removed)."""
    rng = random.Random(20261121)
    checked = 0
    for _ in range(3000):
        raw = _random_url(rng)
        expected = url_normalize(raw.split("#", 1)[0], default_scheme="http")
        try:
            got = normalise_url(raw)
        except InvalidUrl:
            continue  # refused (a bad port, host...): not the library's business
        assert got == expected, raw
        assert got == _normalise(raw)[0], raw
        checked += 1
    assert checked > 2000

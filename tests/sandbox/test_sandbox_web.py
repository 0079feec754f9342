"""The sites over real sockets: name resolution, dispatch, pages, payloads, hostile bodies."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import httpx
import pytest
from sectxt import Parser

from tocsin.net.resolver import parse_hosts_file
from tocsin.sandbox import Sandbox
from tocsin.sandbox.web import url_hit_key


def fetch(
    sb: Sandbox,
    site_id: str,
    path: str | None = None,
    *,
    scheme: str = "http",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """GET a site's URL the way tocsin does: resolve through the hosts file, then connect."""
    site = sb.sites[site_id]
    hosts = parse_hosts_file(sb.hosts_file)
    ip = hosts[site.host][0] if site.host in hosts else site.host
    port = sb.https_port if scheme == "https" else sb.http_port
    url = f"{scheme}://{ip}:{port}{path if path is not None else site.entry}"
    return httpx.get(url, headers={"Host": site.host, **(headers or {})}, verify=False, timeout=10)


def test_hosts_file_names_every_served_host(sandbox: Sandbox) -> None:
    hosts = parse_hosts_file(sandbox.hosts_file)
    for site in sandbox.sites.values():
        if site.host.endswith(".invalid") or site.host[0].isdigit():
            assert site.host not in hosts
        else:
            assert hosts[site.host] == [site.ip], site.id
    assert hosts["intranet.nimbus-corp-portal.com"] == ["10.0.0.1"]
    for real in ("www.googletagmanager.com", "cdnjs.cloudflare.com", "www.youtube-nocookie.com"):
        assert hosts[real][0].startswith("127.10.100.")
    assert {h.rsplit(".", 1)[-1] for h in hosts} >= {"com", "net", "org", "jp", "de", "nl", "br"}


def test_shared_ip_dispatches_on_host_header(sandbox: Sandbox) -> None:
    shared = [s for s in sandbox.sites.values() if s.ip == "127.10.4.10" and s.entry == "/"]
    assert len({s.host for s in shared}) >= 5
    titles = set()
    for site in shared:
        response = fetch(sandbox, site.id)
        assert response.status_code == 200
        titles.add(response.text.split("<title>")[1].split("</title>")[0])
    assert len(titles) == len({s.host for s in shared})
    # A known name on the wrong address gets the host's default page.
    wrong = httpx.get(
        f"http://127.10.2.20:{sandbox.http_port}/",
        headers={"Host": "www.lakeside-dental.com"},
        timeout=5,
    )
    assert wrong.status_code == 404 and "Site not found" in wrong.text


def test_compromised_pages_carry_their_attack_and_clean_state_removes_it(
    sandbox: Sandbox,
) -> None:
    markers = {
        "known-bad-host": "trafficjunction-stats.net",
        "hidden-iframe": 'width="0" height="0"',
        "hidden-iframe-display-none": "display:none",
        "malicious-redirect": "window.location.replace",
        "malicious-redirect-meta": 'http-equiv="refresh"',
        "drive-by-download": "a.click()",
        "fake-update": "update-chrome-browser.net",
        "phishing": "mailbox-verify-login.net",
        "phishing-brand": "Microsoft account",
        "cryptominer": "CoinHive.Anonymous",
        "delayed-injection": "300000",
    }
    for site_id, marker in markers.items():
        response = fetch(sandbox, site_id)
        assert response.status_code == 200, site_id
        assert marker in response.text, site_id
        sandbox.set_site_state(site_id, "clean")
        cleaned = fetch(sandbox, site_id)
        assert marker not in cleaned.text, site_id
        sandbox.set_site_state(site_id, "offline")
        assert fetch(sandbox, site_id).status_code == 404, site_id


def test_injected_script_is_absent_from_the_served_html(sandbox: Sandbox) -> None:
    page = fetch(sandbox, "injected-script").text
    assert "apiscdn-metrics" not in page
    js = fetch(sandbox, "injected-script", "/wp-includes/js/jquery/jquery-migrate.min.js").text
    assert "String.fromCharCode" in js
    url = f"http://apiscdn-metrics.com:{sandbox.http_port}/js/stat.js"
    assert ",".join(str(ord(c)) for c in url) in js
    sandbox.set_site_state("injected-script", "clean")
    js = fetch(sandbox, "injected-script", "/wp-includes/js/jquery/jquery-migrate.min.js").text
    assert "fromCharCode" not in js


def test_skimmer_lives_in_a_first_party_script(sandbox: Sandbox) -> None:
    page = fetch(sandbox, "card-skimmer").text
    assert 'autocomplete="cc-number"' in page and "/static/js/checkout.min.js" in page
    js = fetch(sandbox, "card-skimmer", "/static/js/checkout.min.js").text
    assert "sendBeacon" in js and "addEventListener('change'" in js


def test_clean_site_switched_to_compromised_gets_an_injection(sandbox: Sandbox) -> None:
    assert "fromCharCode" not in fetch(sandbox, "clean-bookshop").text
    sandbox.set_site_state("clean-bookshop", "compromised")
    assert "fromCharCode" in fetch(sandbox, "clean-bookshop").text


def test_seo_cloaking_depends_on_user_agent_and_referer(sandbox: Sandbox) -> None:
    plain = fetch(sandbox, "seo-cloaking").text
    bot = fetch(
        sandbox,
        "seo-cloaking",
        headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
    ).text
    referred = fetch(
        sandbox, "seo-cloaking", headers={"Referer": "https://www.google.co.jp/search?q=x"}
    ).text
    assert "cheap-brand-outlet.net" not in plain
    assert "cheap-brand-outlet.net" in bot and "cheap-brand-outlet.net" in referred


def test_tricky_clean_sites(sandbox: Sandbox) -> None:
    redirect = fetch(sandbox, "clean-https-redirect")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == sandbox.url("clean-https-redirect", scheme="https")
    secure = fetch(sandbox, "clean-https-redirect", scheme="https")
    assert secure.status_code == 200 and "Tischlerei" in secure.text
    bundle = fetch(sandbox, "clean-big-bundle", "/assets/app.3f9c1a7e.min.js")
    assert len(bundle.content) >= 1_000_000
    assert "/wp-login.php" in fetch(sandbox, "clean-login-form").text
    assert "googletagmanager.com" in fetch(sandbox, "clean-analytics").text
    assert 'eval("("' in fetch(sandbox, "clean-eval-library", "/js/vendor/json2-tmpl.js").text


def test_https_verifies_against_the_sandbox_ca(sandbox: Sandbox) -> None:
    assert sandbox.certs is not None
    site = sandbox.sites["card-skimmer"]
    response = httpx.get(
        f"https://{site.ip}:{sandbox.https_port}{site.entry}",
        headers={"Host": site.host},
        verify=sandbox.certs.client_context(),
        timeout=5,
    )
    assert response.status_code == 200


def test_offline_cases(sandbox: Sandbox) -> None:
    assert fetch(sandbox, "offline-404").status_code == 404
    assert fetch(sandbox, "offline-410").status_code == 410
    with pytest.raises(httpx.ConnectError):
        fetch(sandbox, "offline-refused")
    assert "www.closed-bakery.invalid" not in parse_hosts_file(sandbox.hosts_file)


def test_security_txt_variants(sandbox: Sandbox) -> None:
    valid = fetch(sandbox, "injected-script", "/.well-known/security.txt")
    url = sandbox.url("injected-script", "/.well-known/security.txt")
    parsed = Parser(valid.content, urls=url)
    assert parsed.is_valid(), parsed.errors
    assert parsed.contact_email == "security@sakura-wagashi.co.jp"
    assert parsed.preferred_languages == ["ja", "en"]
    assert fetch(sandbox, "injected-script", "/security.txt").status_code == 404
    legacy = fetch(sandbox, "known-bad-host", "/security.txt")
    assert legacy.status_code == 200 and Parser(legacy.content).is_valid()
    assert fetch(sandbox, "known-bad-host", "/.well-known/security.txt").status_code == 404
    expired = Parser(fetch(sandbox, "hidden-iframe", "/.well-known/security.txt").content)
    assert "expired" in {e["code"] for e in expired.errors}
    assert fetch(sandbox, "clean-bookshop", "/.well-known/security.txt").status_code == 404


def _zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_direct_payloads_have_real_magic_and_sometimes_a_lying_type(sandbox: Sandbox) -> None:
    pe = fetch(sandbox, "payload-pe")
    assert pe.headers["content-type"] == "application/x-msdownload"
    assert pe.content[:2] == b"MZ"
    (offset,) = struct.unpack_from("<I", pe.content, 0x3C)
    assert pe.content[offset : offset + 4] == b"PE\0\0"
    lying = fetch(sandbox, "payload-pe-as-png")
    assert lying.headers["content-type"] == "image/png" and lying.content[:2] == b"MZ"
    assert fetch(sandbox, "payload-elf").content[:4] == b"\x7fELF"
    assert fetch(sandbox, "payload-elf-as-text").headers["content-type"].startswith("text/plain")
    zipped = fetch(sandbox, "payload-zip-as-html")
    assert zipped.headers["content-type"].startswith("text/html")
    assert _zip_names(zipped.content) == ["Invoice_0342.exe"]
    assert "AndroidManifest.xml" in _zip_names(fetch(sandbox, "payload-apk").content)
    assert "word/vbaProject.bin" in _zip_names(fetch(sandbox, "payload-docm").content)
    assert fetch(sandbox, "payload-xls-as-pdf").content[:8] == bytes.fromhex("d0cf11e0a1b11ae1")
    assert b"WScript.Shell" in fetch(sandbox, "payload-js").content
    sandbox.set_site_state("payload-pe", "clean")
    assert fetch(sandbox, "payload-pe").status_code == 404


def test_ssrf_redirect_points_at_cloud_metadata(sandbox: Sandbox) -> None:
    response = fetch(sandbox, "ssrf-metadata-redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "http://169.254.169.254/latest/meta-data/"
    page = fetch(sandbox, "ssrf-canary").text
    assert f"http://127.0.0.1:{sandbox.canary_port}/" in page


def test_canary_records_hits(sandbox: Sandbox) -> None:
    assert sandbox.canary_hits == []
    httpx.get(f"http://127.0.0.1:{sandbox.canary_port}/latest/meta-data/", timeout=5)
    assert [h["path"] for h in sandbox.canary_hits] == ["/latest/meta-data/"]


def test_redirect_loop(sandbox: Sandbox) -> None:
    first = fetch(sandbox, "hostile-redirect-loop")
    assert first.status_code == 302 and first.headers["location"] == "/loop/b"
    assert fetch(sandbox, "hostile-redirect-loop", "/loop/b").headers["location"] == "/loop/a"


def _stream(sb: Sandbox, site_id: str):
    site = sb.sites[site_id]
    return httpx.stream(
        "GET",
        f"http://{site.ip}:{sb.http_port}{site.entry}",
        headers={"Host": site.host, "Accept-Encoding": "identity"},
        timeout=10,
    )


@pytest.mark.serial  # a wall-clock bound
def test_one_gigabyte_body_is_streamed(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with _stream(sandbox, "hostile-1gb") as response:
        assert int(response.headers["content-length"]) == 1024**3
        got = 0
        for chunk in response.iter_raw():
            got += len(chunk)
            if got >= 2 * 1024**2:
                break
    assert got >= 2 * 1024**2
    assert time.monotonic() - started < 10


@pytest.mark.serial  # a wall-clock bound
def test_slow_drip_sends_one_byte_a_second(sandbox: Sandbox) -> None:
    started = time.monotonic()
    received = b""
    with _stream(sandbox, "hostile-slow-drip") as response:
        for chunk in response.iter_raw():
            received += chunk
            if len(received) >= 3:
                break
    elapsed = time.monotonic() - started
    assert received[:3] == b"<!D"
    assert 1.5 <= elapsed < 6


@pytest.mark.slow
def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(sandbox: Sandbox) -> None:
    with _stream(sandbox, "hostile-gzip-bomb") as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert len(raw) < 1024**2
    inflater = zlib.decompressobj(31)
    total = 0
    data = raw
    while data and total < 200 * 1024**2 + 1:
        out = inflater.decompress(data, 16 * 1024**2)
        total += len(out)
        data = inflater.unconsumed_tail
    assert total > 200 * 1024**2


def test_the_hit_log_counts_requests_by_host_path_and_query(sandbox: Sandbox) -> None:
    site = sandbox.sites["clean-bookshop"]
    for path in ("/?n=1", "/?n=1", "/?n=2"):
        assert fetch(sandbox, site.id, path).status_code == 200
    hits = sandbox.hits()
    assert hits[url_hit_key(sandbox.url(site.id, "/?n=1"))] == 2  # scheme and port aside
    assert hits[f"{site.host}/?n=2"] == 1
    sandbox.reset()
    assert not sandbox.hits()

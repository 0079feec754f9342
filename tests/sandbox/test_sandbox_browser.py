"""The attacks really fire in a real Chromium (no guard): the crawler's tests rest on this."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tocsin.net.resolver import parse_hosts_file
from tocsin.sandbox import Sandbox

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser(sandbox: Sandbox) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium")
    from playwright.sync_api import sync_playwright

    rules = ",".join(f"MAP {h} {ips[0]}" for h, ips in parse_hosts_file(sandbox.hosts_file).items())
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*FLAGS, f"--host-resolver-rules={rules}"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(user_agent=UA, ignore_https_errors=True, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.requested = requested
    yield page
    page.close()
    context.close()


def whats(sb: Sandbox) -> list[str]:
    return [entry["what"] for entry in sb.attacker_log]


def test_injected_script_loads_at_run_time(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("injected-script"), wait_until="load")
    page.wait_for_function("() => [...document.scripts].some(s => s.src.includes('apiscdn'))")
    page.wait_for_timeout(300)
    assert any("apiscdn-metrics.com" in url and "/js/stat.js" in url for url in page.requested)
    assert "beacon" in whats(sandbox)


def test_delayed_injection_needs_the_clock(sandbox: Sandbox, page) -> None:
    page.clock.install()
    page.goto(sandbox.url("delayed-injection"), wait_until="load")
    page.wait_for_timeout(300)
    assert not any("cdn-widget-loader.com" in url for url in page.requested)
    page.clock.run_for("05:01")
    page.wait_for_function("() => document.documentElement.getAttribute('data-w') === '1'")
    assert "delayed-loaded" in whats(sandbox)


def test_skimmer_checks_in_and_exfiltrates_card_fields(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("card-skimmer"), wait_until="load")
    page.fill("input[name='payment[cc_number]']", "4111111111111111")
    page.fill("input[name='payment[cc_cid]']", "123")
    page.click("#place-order", no_wait_after=True)
    page.wait_for_timeout(500)
    log = sandbox.attacker_log
    assert "ping" in [e["what"] for e in log]
    exfil = [e for e in log if e["what"] == "exfil"]
    assert exfil


def test_cryptominer_talks_to_the_pool(sandbox: Sandbox, page) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(sandbox.url("cryptominer"), wait_until="load")
    page.wait_for_timeout(1500)
    assert any("ws1.webminer-pool.net" in url for url in sockets)
    assert {"pool-auth", "pool-submit"} <= set(whats(sandbox))


def test_fake_update_overlay_appears(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("fake-update"), wait_until="load")
    overlay = page.locator("#chrome-update-ov")
    overlay.wait_for(state="visible")
    assert "Update Chrome" in overlay.inner_text()
    with page.expect_download() as info:
        page.click("#chrome-update-btn")
    assert info.value.suggested_filename == "Chrome.Update.zip"


def test_conditional_js_redirect_for_a_browser(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("malicious-redirect"), wait_until="load")
    page.wait_for_url("**prize-winner-today.net**", timeout=8000)
    assert "landing" in whats(sandbox)


def test_meta_refresh_redirect(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("malicious-redirect-meta"), wait_until="load")
    page.wait_for_url("**prize-winner-today.net**", timeout=8000)


def test_drive_by_download(sandbox: Sandbox, page) -> None:
    with page.expect_download(timeout=8000) as info:
        page.goto(sandbox.url("drive-by-download"), wait_until="load")
    assert info.value.suggested_filename == "Factuur_2024_0381.zip"


def test_hidden_iframes_load_the_tds(sandbox: Sandbox, page) -> None:
    for site_id in ("hidden-iframe", "hidden-iframe-display-none"):
        page.goto(sandbox.url(site_id), wait_until="load")
        assert any("tds-gateway.net" in frame.url for frame in page.frames), site_id


def test_analytics_loader_chain_is_live(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("clean-analytics"), wait_until="load")
    page.wait_for_timeout(500)
    assert any("www.googletagmanager.com" in url and "gtm.js" in url for url in page.requested)
    assert any("www.google-analytics.com" in url and "/g/collect" in url for url in page.requested)


def test_canary_is_reachable_without_a_guard(sandbox: Sandbox, page) -> None:
    page.goto(sandbox.url("ssrf-canary"), wait_until="load")
    page.wait_for_timeout(300)
    assert {hit["path"].split("?")[0] for hit in sandbox.canary_hits} >= {
        "/pixel.gif",
        "/latest/meta-data/",
    }

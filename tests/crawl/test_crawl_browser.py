"""A person's browser, visit conditions, and no traffic of Chromium's own (issue 11: 1, 2, 9).

One ``tocsin crawl`` (module fixture) of the browser-realism sites of the sandbox
(loaders that stay quiet for automation; redirects only for phones and/or search
visitors; clean pages that test the same things) with the guard proxy's log on.
Each is detected with its family, the evidence names the condition, the clean ones
stay clean, and every connection Chromium asked the proxy for was a page's.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from crawl_support import Crawl, crawl_urls, sandbox_config
from sqlalchemy import select

from crawler.browser.conditions import ConditionRun, Outcome
from crawler.browser.profiles import BASELINE, Condition, condition_plan
from crawler.browser.proxy import SERVICE_HOSTS, GuardProxy
from crawler.net import NetPolicy
from crawler.settings import chromium_path
from store.models import Check
from tocsin.config import Config
from tocsin.sandbox.catalogue import CATALOGUE, attacker

FIRST, LAST = 150, 164
SITES = [
    s
    for s in CATALOGUE
    if s.kind in ("compromised", "tricky-clean")
    and s.provider != "stormwall"
    and FIRST <= int(s.ip.rsplit(".", 1)[1]) <= LAST
]
PERSON = [s for s in SITES if s.behaviour == "person-only-loader"]
CONDITIONAL = [s for s in SITES if s.behaviour == "condition-redirect"]
# One tricky-clean page here (the catalogue crawl checks both stay clean, FP = 0).
CLEAN = [s for s in SITES if s.id == "clean-condition-aware"]
# A plain clean page: the plan costs it nothing (one visit).
CONTROL = ["clean-bookshop"]


def _expected(site: Any) -> tuple[str, str | None]:
    """(profile, referer kind) under which a conditional redirect fires, from its tags."""
    mobile, search = site.tags[0], site.tags[1]
    return ("mobile" if mobile != "-" else "desktop", "search" if search != "-" else None)


@pytest.fixture(scope="module")
def browser_crawl(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    folder = tmp_path_factory.mktemp("browser-crawl")
    browser = {"proxy_log": str(folder / "proxy.jsonl"), "concurrency": 4}
    ids_of = [s.id for s in [*PERSON, *CONDITIONAL, *CLEAN]] + CONTROL
    urls = {sid: sandbox.url(sid) for sid in ids_of}
    crawl = crawl_urls(sandbox, folder, urls, browser=browser)
    crawl.site_requests = sandbox.request_log  # type: ignore[attr-defined]
    return crawl


def _check(crawl: Crawl, site_id: str) -> Check:
    with crawl.db.session() as session:
        return session.scalars(select(Check).where(Check.url_id == crawl.ids[site_id])).one()


def test_the_crawl_ran(browser_crawl: Crawl) -> None:
    assert browser_crawl.returncode == 0, browser_crawl.stderr[-3000:]


@pytest.mark.parametrize("site", PERSON, ids=lambda s: s.id)
def test_loaders_quiet_for_automation_run_for_the_person_profile(browser_crawl, site) -> None:
    check = _check(browser_crawl, site.id)
    assert (check.verdict, check.family) == (site.verdict, site.family), check.evidence_lines
    # Seen on the first visit: desktop, no referer; the plan stopped there.
    browser = check.meta["browser"]
    assert browser["condition"] == {"profile": "desktop", "referer": None}
    assert len(browser["conditions"]) == 1
    host = attacker("personcheck2" if site.tags[0] in ("window", "combo") else "personcheck")
    assert any(host.replace(".", "[.]") in line for line in check.evidence_lines)


@pytest.mark.parametrize("site", CONDITIONAL, ids=lambda s: s.id)
def test_conditional_redirects_are_found_and_the_condition_recorded(browser_crawl, site) -> None:
    check = _check(browser_crawl, site.id)
    assert (check.verdict, check.family) == ("malicious", "malicious-redirect"), check.meta
    profile, referer = _expected(site)
    kept = check.meta["browser"]["condition"]
    assert kept["profile"] == profile
    assert (kept["referer"] is not None) == (referer == "search")
    if profile == "mobile":
        assert kept["device"] == "Pixel 7"
    tried = check.meta["browser"]["conditions"]
    # Every earlier condition was tried and was clean; the plan stopped at the malicious one.
    assert [t["verdict"] for t in tried[:-1]] == ["clean"] * (len(tried) - 1)
    assert tried[-1]["verdict"] == "malicious" and tried[0]["profile"] == "desktop"
    first = check.evidence_lines[0]
    assert "only to" in first and (("phone" in first) == (profile == "mobile"))
    assert ("google[.]com" in first) == (referer == "search")


@pytest.mark.parametrize("site", CLEAN, ids=lambda s: s.id)
def test_clean_pages_that_test_conditions_stay_clean(browser_crawl, site) -> None:
    check = _check(browser_crawl, site.id)
    assert check.verdict == "clean", (check.rules, check.evidence_lines)
    tried = check.meta["browser"]["conditions"]
    assert len(tried) == 4 and all(t["verdict"] == "clean" for t in tried)
    # The phone was sent to the site's own /m/ page: seen, harmless.
    mobile = [t for t in tried if t["profile"] == "mobile"]
    assert all(t["hosts"] == [site.host] for t in mobile)


def test_the_browser_says_it_is_a_current_chrome(browser_crawl) -> None:
    hosts = {s.host for s in [*PERSON, *CONDITIONAL, *CLEAN]}
    seen = [r for r in browser_crawl.site_requests if r["host"] in hosts]
    agents = {r["user_agent"] for r in seen if "Chrome/" in r["user_agent"]}
    assert agents and not any("Headless" in ua for ua in agents)
    desktop = [ua for ua in agents if "Windows NT 10.0" in ua]
    phone = [ua for ua in agents if "Android" in ua and "Mobile Safari" in ua]
    assert desktop and phone
    referers = {r["referer"] for r in seen if r["path"] == "/"}
    assert "https://www.google.com/" in referers


def test_no_request_the_pages_did_not_cause(browser_crawl) -> None:
    """Every connection Chromium asked the guard for was to a host a page requested."""
    lines = (browser_crawl.folder / "proxy.jsonl").read_text().splitlines()
    asked = [json.loads(line) for line in lines]
    assert len(asked) > len(SITES)
    caused: set[str] = set()
    with browser_crawl.db.session() as session:
        for check in session.scalars(select(Check)):
            for tried in (check.meta.get("browser") or {}).get("conditions") or []:
                caused.update(tried["hosts"])
    connected = [a for a in asked if a["action"] == "connect"]
    unexplained = sorted({a["host"] for a in connected} - caused)
    assert connected and unexplained == [], unexplained
    # What Chromium still asks for on its own (no switch stops it in every build) was
    # refused by the guard, never connected: only background-service hosts.
    others = [a for a in asked if a["action"] != "connect"]
    assert all(
        a["action"] == "refused-service" and SERVICE_HOSTS.match(a["host"]) for a in others
    ), others
    assert not {a["host"] for a in others} & caused


def test_clean_pages_that_read_no_condition_get_one_visit(browser_crawl) -> None:
    check = _check(browser_crawl, "clean-bookshop")
    assert check.verdict == "clean"
    tried = check.meta["browser"]["conditions"]
    assert len(tried) == 1 and tried[0]["probes"] == [], tried


def test_guard_refuses_and_counts_browser_services(tmp_path: Path) -> None:
    """Even should Chromium call home, the proxy refuses Google's service hosts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 update.googleapis.com clients2.google.com www.example.com\n")
    config = Config.model_validate({"network": {"allow_private": True, "hosts_file": str(hosts)}})
    log = tmp_path / "proxy.jsonl"

    async def ask(proxy: GuardProxy, target: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return line

    async def run() -> tuple[list[bytes], GuardProxy]:
        proxy = GuardProxy(NetPolicy.for_config(config.network), log_path=str(log))
        await proxy.start()
        try:
            answers = [
                await ask(proxy, f"update.googleapis.com:{port}"),
                await ask(proxy, f"clients2.google.com:{port}"),
                await ask(proxy, f"www.example.com:{port}"),
            ]
        finally:
            await proxy.close()
        return answers, proxy

    try:
        answers, proxy = asyncio.run(run())
    finally:
        listener.close()
    assert answers[0].startswith(b"HTTP/1.1 403") and answers[1].startswith(b"HTTP/1.1 403")
    assert answers[2].startswith(b"HTTP/1.1 200")
    assert proxy.service_refused == {"update.googleapis.com": 1, "clients2.google.com": 1}
    actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert actions == ["refused-service", "refused-service", "connect"]


def test_pages_are_quiet_for_an_undisguised_automated_chromium(sandbox, tmp_path) -> None:
    """The loaders gate on the tells: Chromium as Playwright drives it (with the locale
    tocsin sets) sets none off."""
    from playwright.async_api import async_playwright

    from crawler.settings import CHROMIUM_FLAGS
    from tocsin.config import load

    config = load(sandbox_config(sandbox, tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))
    flags = [f for f in CHROMIUM_FLAGS if "AutomationControlled" not in f]
    bad = {attacker("personcheck"), attacker("personcheck2")}
    asked: list[str] = []

    async def visit_all() -> None:
        proxy = GuardProxy(NetPolicy.for_config(config.network))
        await proxy.start()
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path=chromium_path(""),
                    args=flags,
                    proxy={"server": proxy.url},
                )
                context = await browser.new_context(ignore_https_errors=True, locale="en-US")
                context.on("request", lambda r: asked.append(r.url))

                async def visit(url: str) -> None:
                    page = await context.new_page()
                    await page.goto(url, wait_until="load")
                    await page.wait_for_timeout(2500)  # the combo loader waits 1.5 s
                    await page.close()

                await asyncio.gather(*(visit(sandbox.url(site.id)) for site in PERSON))
                await browser.close()
        finally:
            await proxy.close()

    asyncio.run(visit_all())
    hosts = {s.host for s in PERSON}
    assert hosts <= {u.split("/")[2].split(":")[0] for u in asked}  # the pages did load
    assert not [u for u in asked if u.split("/")[2].split(":")[0] in bad]


def test_plan_is_bounded_by_visits_and_budget() -> None:
    config = Config.model_validate({"browser": {"max_visits": 3, "visit_budget": "0s"}})
    plan = condition_plan(config)
    assert plan[0] == BASELINE and len(plan) == 3
    run = ConditionRun(config, plan)
    run.outcomes.append(
        Outcome(BASELINE, {"condition_probes": ["referrer"]}, [], None, "clean", 10)
    )
    assert run.next_condition() is None  # the budget is spent
    roomy = Config.model_validate({"browser": {"visit_budget": "1h"}})
    run = ConditionRun.for_config(roomy)
    read = {"condition_probes": ["userAgent"]}
    for verdict in ("clean", "clean", "clean", "clean"):
        assert not run.outcomes or run.next_condition() is not None
        run.outcomes.append(Outcome(run.current, read, [], None, verdict, 10))
    assert run.next_condition() is None and len(run.outcomes) == 4
    assert run.kept().condition == BASELINE
    # A page that reads nothing a condition changes: one visit.
    run = ConditionRun.for_config(roomy)
    run.outcomes.append(Outcome(BASELINE, {"condition_probes": []}, [], None, "clean", 10))
    assert run.next_condition() is None
    # Malicious at once: no more visits.
    run = ConditionRun.for_config(roomy)
    run.outcomes.append(Outcome(BASELINE, read, [], None, "malicious", 10))
    assert run.next_condition() is None and run.kept().verdict == "malicious"
    off = Config.model_validate({"browser": {"condition_visits": False}})
    assert condition_plan(off) == [Condition("desktop")]

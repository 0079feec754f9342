"""The board end to end, in a real Chromium, on data the real pipeline made.

The sandbox's sites are ingested, crawled, enriched and notified (to the outbox) by
``tocsin`` itself; then ``tocsin board`` serves that store and Playwright drives it as
an analyst, a recipient and a researcher would. Each test saves screenshots of the
pages it saw.

On SQLite only: the pipeline costs a few minutes of `tocsin` runs and Chromium per
engine, and what it does to the store runs on both engines elsewhere: the board's
pages, portal, re-check buttons and API in test_pages.py and test_api.py (a seeded
store, ``module_db_url``), the crawl in tests/crawl (test_crawl_recheck,
test_crawl_concurrent), enrichment in tests/enrich, notices and the re-check in
tests/notify. What is left here is the browser's view, the same on either engine.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from board_support import BoardProcess
from sqlalchemy import func, select

from store.db import Database
from store.models import Contact, Event, Incident, Notice, NoticeItem, Site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("module_db_url", ["sqlite"], indirect=True),
]

SITES = ("injected-script", "markup-title", "known-bad-host", "card-skimmer", "clean-ramen")
PASSWORD = "correct horse battery staple"
SECRET = "browser-tests-secret-987654321"


@dataclass
class Pipeline:
    board: BoardProcess
    cli: Any
    db: Database
    folder: Path
    sandbox: Any
    token: str  # an analyst's API token

    def outbox(self) -> list[email.message.EmailMessage]:
        box = mailbox.Maildir(self.folder / "outbox", factory=None, create=False)
        return [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]

    def incident(self, host: str) -> Incident:
        with self.db.session() as s:
            return s.scalars(
                select(Incident).join(Site, Site.id == Incident.site_id).where(Site.host == host)
            ).one()


@pytest.fixture(scope="module")
def pipeline(
    sandbox: Any, module_db_url: str, tmp_path_factory: pytest.TempPathFactory, make_cli: type
) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("pipeline")
    from tocsin.sandbox.web import free_port

    port = free_port("127.0.0.1")
    config = sandbox.write_config(
        folder / "tocsin.toml",
        module_db_url,
        guard="open",
        board={"base_url": f"http://127.0.0.1:{port}", "secret": SECRET},
        browser={"navigation_timeout": "15s", "page_timeout": "30s"},
    )
    cli = make_cli(folder, config)
    feed = folder / "feed.txt"
    feed.write_text("".join(sandbox.url(s) + "\n" for s in SITES), encoding="utf-8")
    for step in (["ingest", str(feed)], ["crawl"], ["enrich"], ["notify"]):
        result = cli(*step)
        assert result.returncode == 0, (step, result.stdout, result.stderr)
    # One site is cleaned and found clean two days after its notice, so the campaign's
    # remediation curve has a drop to draw.
    sandbox.set_site_state("card-skimmer", "clean")
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    rechecked = cli("--now", later, "recheck")
    assert rechecked.returncode == 0 and "resolved" in rechecked.stdout, rechecked.stderr
    sandbox.set_site_state("card-skimmer", "compromised")
    added = cli("user", "add", "alice", "--role", "analyst", "--password-stdin", input=PASSWORD)
    assert added.returncode == 0, added.stderr
    token = cli("token", "create", "scripts", "--role", "analyst").stdout.strip()
    board = BoardProcess(cli)
    board.port, board.base = port, f"http://127.0.0.1:{port}"
    with board:
        yield Pipeline(board, cli, Database(module_db_url), folder, sandbox, token)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(page.shots / f"{name}.png"), full_page=True)


def login(page: Any, pipeline: Pipeline, then: str = "/") -> None:
    page.goto(pipeline.board.url(then))
    assert "/login" in page.url
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url


def no_csp_errors(page: Any) -> None:
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e]
    assert page.console_errors == []
    assert page.dialogs == []


def test_analyst_sees_the_campaign_and_its_remediation_curve(pipeline: Pipeline, page) -> None:
    login(page, pipeline)
    shot(page, "campaigns")
    rows = page.locator("#campaigns tbody tr")
    assert rows.count() >= 3
    skimmer = rows.filter(has_text="card-skimmer")
    assert skimmer.locator("td").nth(8).inner_text() == "1"  # resolved
    skimmer.locator("a").first.click()
    page.wait_for_load_state()
    chart = page.locator("#remediation svg.chart")
    chart.wait_for()
    box = chart.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 150
    curve = page.locator("#remediation svg.chart path[data-points]")
    assert curve.count() >= 1 and int(curve.first.get_attribute("data-points")) >= 1
    assert "V" in curve.first.get_attribute("d")  # it drops where the site was cleaned
    assert curve.first.bounding_box()["width"] > 100
    assert "Half the sites were clean after 2.0 days" in page.inner_text("#remediation")
    assert page.locator("#networks tbody tr").count() >= 1
    shot(page, "campaign")
    no_csp_errors(page)


def test_incident_page_shows_the_screenshot_and_hostile_text_as_text(
    pipeline: Pipeline, page
) -> None:
    spec = pipeline.sandbox.sites["markup-title"]
    incident = pipeline.incident(spec.host)
    login(page, pipeline, f"/incidents/{incident.public_id}")
    image = page.locator("figure.screenshot img")
    image.wait_for()
    # Attached is not loaded: wait for the image's own load or error (a loaded machine is slow).
    loaded = image.evaluate(
        """img => img.complete ? img.naturalWidth > 0 : new Promise(done => {
            img.addEventListener("load", () => done(img.naturalWidth > 0));
            img.addEventListener("error", () => done(false));
        })"""
    )
    assert loaded, "the evidence screenshot did not load"
    assert image.bounding_box()["width"] > 100
    # The crawled title and URL are on the page as text: nothing ran, nothing was added.
    assert spec.title in page.inner_text("#evidence")
    assert "javascript:alert(2)" in page.inner_text("#evidence")
    assert page.locator("#evidence img").count() == 1  # only the screenshot
    assert page.locator("script").count() == 1  # the board's own board.js
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.locator("#notices article").count() >= 1
    assert (
        "portal" in page.inner_text("#notices pre.message")
        or page.locator("#notices details").count()
    )
    shot(page, "incident")
    no_csp_errors(page)


def test_every_page_is_served_under_the_csp_without_violations(pipeline: Pipeline, page) -> None:
    login(page, pipeline)
    incident = pipeline.incident(pipeline.sandbox.sites["injected-script"].host)
    with pipeline.db.session() as s:
        asn = s.get(Site, incident.site_id).asn
    for path in ("/", f"/incidents/{incident.public_id}", f"/networks/{asn}", "/search?q=sakura"):
        response = page.goto(pipeline.board.url(path))
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        shot(page, path.strip("/").replace("/", "_").replace("?", "_") or "home")
    page.goto(pipeline.board.url(f"/search?q={incident.public_id}"))
    assert f"/incidents/{incident.public_id}" in page.url
    no_csp_errors(page)


def _portal_links(pipeline: Pipeline) -> dict[str, tuple[str, set[str]]]:
    """Recipient -> (their portal link, the tickets of the incidents their notice named)."""
    found: dict[str, tuple[str, set[str]]] = {}
    with pipeline.db.session() as s:
        for message in pipeline.outbox():
            text = message.get_body(preferencelist=("plain",)).get_content()
            link = re.search(r"(http://127\.0\.0\.1:\d+/portal/[\w.\-]+)", text)
            assert link, "a notice without a portal link"
            notice = s.scalars(
                select(Notice).where(Notice.message_id == message["Message-ID"])
            ).one()
            tickets = set(
                s.scalars(
                    select(Incident.public_id)
                    .join(NoticeItem, NoticeItem.incident_id == Incident.id)
                    .where(NoticeItem.notice_id == notice.id)
                )
            )
            found[str(message["To"])] = (link[1], tickets)
    return found


def test_a_portal_link_from_a_real_notice_shows_exactly_that_recipients_incidents(
    pipeline: Pipeline, page
) -> None:
    links = _portal_links(pipeline)
    assert len(links) >= 2
    (one, (link, tickets)), (_, (_, others)) = sorted(links.items())[:2]
    response = page.goto(link)
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    shown = set(page.locator("article.portal-incident").evaluate_all("els => els.map(e => e.id)"))
    with pipeline.db.session() as s:
        contact_id = s.scalars(select(Contact.id).where(Contact.email == one)).first()
        told = set(
            s.scalars(
                select(Incident.public_id)
                .join(NoticeItem, NoticeItem.incident_id == Incident.id)
                .where(NoticeItem.contact_id == contact_id)
            )
        )
    assert shown == told and tickets <= shown
    foreign = sorted(others - told)
    if foreign:
        # Another recipient's incident, asked for through this portal: 404.
        with httpx.Client() as http:
            page_html = http.get(link).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page_html)[1]
            answer = http.post(f"{link}/recheck", data={"csrf": csrf, "incident": foreign[0]})
        assert answer.status_code == 404
    shot(page, "portal")
    no_csp_errors(page)
    bad = page.goto(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert bad.status == 404 and "does not lead anywhere" in page.inner_text("main")
    assert page.dialogs == []


def test_please_recheck_is_done_by_the_next_recheck_and_only_a_clean_site_resolves(
    pipeline: Pipeline, page
) -> None:
    clean_site = pipeline.sandbox.sites["injected-script"]
    still_bad = pipeline.sandbox.sites["known-bad-host"]
    links = _portal_links(pipeline)
    fixed = pipeline.incident(clean_site.host)
    unfixed = pipeline.incident(still_bad.host)
    link = next(url for url, tickets in links.values() if fixed.public_id in tickets)
    page.goto(link)
    page.locator(f"article#{fixed.public_id} button.recheck").click()
    page.wait_for_load_state()
    assert "re-check is queued" in page.inner_text("main")
    shot(page, "portal-recheck")
    # The claim alone changes nothing.
    assert pipeline.incident(clean_site.host).state == "open"
    assert pipeline.incident(clean_site.host).recheck_requested_at is not None

    login(page, pipeline, f"/incidents/{unfixed.public_id}")
    page.click("button#recheck")
    page.wait_for_load_state()
    assert "re-check is queued" in page.inner_text("main")
    shot(page, "incident-recheck")

    pipeline.sandbox.set_site_state(clean_site.id, "clean")
    result = pipeline.cli("recheck")
    assert result.returncode == 0, result.stderr
    after_fixed = pipeline.incident(clean_site.host)
    after_unfixed = pipeline.incident(still_bad.host)
    assert after_fixed.state == "resolved" and after_fixed.recheck_requested_at is None
    assert after_unfixed.state == "open" and after_unfixed.recheck_requested_at is None
    with pipeline.db.session() as s:
        confirmed = s.scalars(
            select(Event).where(Event.incident_id == unfixed.id, Event.kind == "incident.confirmed")
        ).all()
    assert confirmed and max(e.id for e in confirmed) > requested_id(pipeline, unfixed.id)
    page.goto(pipeline.board.url(f"/incidents/{fixed.public_id}"))
    history = page.inner_text("#history")
    assert "incident.recheck_requested" in history and "incident.resolved" in history


def requested_id(pipeline: Pipeline, incident_id: int) -> int:
    with pipeline.db.session() as s:
        return s.scalar(
            select(func.max(Event.id)).where(
                Event.incident_id == incident_id, Event.kind == "incident.recheck_requested"
            )
        )


def test_a_submission_shows_its_verdicts_after_the_next_crawl(pipeline: Pipeline) -> None:
    urls = [pipeline.sandbox.url("cryptominer"), pipeline.sandbox.url("clean-bookshop")]
    headers = {"Authorization": f"Bearer {pipeline.token}"}
    with pipeline.board.client() as http:
        made = http.post(
            "/api/v1/submissions", json={"urls": urls, "source": "e2e"}, headers=headers
        )
        assert made.status_code == 201 and made.json()["new"] == 2, made.text
        sid = made.json()["id"]
        before = http.get(f"/api/v1/submissions/{sid}", headers=headers).json()
        assert [u["verdict"] for u in before["urls"]] == ["pending", "pending"]
        assert pipeline.cli("crawl").returncode == 0
        after = http.get(f"/api/v1/submissions/{sid}", headers=headers).json()
    verdicts = {u["url"]: (u["verdict"], u["family"]) for u in after["urls"]}
    assert verdicts[after["urls"][0]["url"]] == ("malicious", "cryptominer")
    assert verdicts[after["urls"][1]["url"]][0] == "clean"
    assert after["urls"][0]["incident"]["state"] == "open"

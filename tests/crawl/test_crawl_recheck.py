"""The store side of a crawl on SQLite and PostgreSQL: incidents, campaigns from
``ingest --campaign``, re-checks of given URLs, and a re-compromise reopening a
resolved incident. Runs in-process through :mod:`crawler.runner`, as the
notifier calls it."""

from __future__ import annotations

from collections import Counter

from crawl_support import add_urls, sandbox_config
from sqlalchemy import select

from crawler.runner import check_urls, crawl_due, run_spiders
from store import incidents
from store.models import Campaign, Check, Event, Incident, IncidentUrl, Url
from tocsin.app import App
from tocsin.urls import normalise_url


def _incident_of(session, url_id: int) -> Incident:
    return session.scalars(
        select(Incident)
        .join(IncidentUrl, IncidentUrl.incident_id == Incident.id)
        .where(IncidentUrl.url_id == url_id)
    ).one()


def test_recheck_and_recompromise(sandbox, tmp_path, db_url) -> None:
    app = App(config_path=sandbox_config(sandbox, tmp_path, db_url))
    ids = add_urls(app.db, [sandbox.url("injected-script"), sandbox.url("payload-pe")])
    hinted = add_urls(app.db, [sandbox.url("payload-zip")], campaign="Operation Paper Trail")
    page = ids[normalise_url(sandbox.url("injected-script"))]
    (zipped,) = hinted.values()

    outcomes, results = crawl_due(app)
    assert results[0].finish_reason == "finished"
    assert {o.verdict for o in outcomes.values()} == {"malicious"}
    assert outcomes[page].family == "injected-script" and outcomes[page].incident_id
    assert outcomes[zipped].campaign == "Operation Paper Trail"
    with app.db.session() as session:
        campaign = session.scalars(
            select(Campaign).where(Campaign.name == "Operation Paper Trail")
        ).one()
        assert campaign.manual and campaign.family == "malware-download"
        incident = _incident_of(session, page)
        assert incident.state == "open"
        # The notifier found it clean once and resolved it.
        incidents.resolve(session, incident, app.clock.now(), reason="clean", check_id=None)

    # Nothing is due any more: a second crawl checks nothing.
    again, _ = crawl_due(app)
    assert again == {}

    # The site is still compromised: a re-check reopens the incident (a re-compromise).
    summary = check_urls(app, [page, 999_999], kind="recheck")
    assert summary.missing == [999_999]
    outcome = summary.outcomes[page]
    assert (outcome.verdict, outcome.kind, outcome.family) == (
        "malicious",
        "recheck",
        "injected-script",
    )
    with app.db.session() as session:
        incident = _incident_of(session, page)
        assert (incident.state, incident.reopen_count, incident.level) == ("reopened", 1, 0)
        reopened = session.scalars(
            select(Event).where(Event.kind == "incident.reopened", Event.incident_id == incident.id)
        ).one()
        assert reopened.data["recompromise"] is True
        url = session.get(Url, page)
        assert url.check_count == 2 and url.verdict == "malicious"

    # Cleaned: the re-check says clean; the incident is the notifier's to resolve.
    sandbox.set_site_state("injected-script", "clean")
    summary = check_urls(app, [page])
    assert summary.outcomes[page].verdict == "clean"
    assert summary.counts == Counter({"clean": 1})
    with app.db.session() as session:
        checks = session.scalars(select(Check).where(Check.url_id == page).order_by(Check.id)).all()
        assert [c.kind for c in checks] == ["triage", "recheck", "recheck"]
        assert [c.verdict for c in checks] == ["malicious", "malicious", "clean"]
        assert _incident_of(session, page).state == "reopened"
        assert session.get(Url, page).verdict == "clean"


def test_run_spiders_runs_in_one_process_again_and_again(sandbox, tmp_path, db_url) -> None:
    """The reactor is not restartable; the runner keeps one for the whole process."""
    from scrapy import Request, Spider

    app = App(config_path=sandbox_config(sandbox, tmp_path, db_url))
    seen: list[tuple[str, int]] = []

    class Probe(Spider):
        name = "probe"

        async def start(self):
            yield Request(sandbox.url("clean-bookshop"), callback=self.parse, dont_filter=True)

        def parse(self, response):
            seen.append((response.url, response.status))

    for _ in range(2):
        (result,) = run_spiders(app, [(Probe, {})])
        assert result.finish_reason == "finished" and result.spider == "probe"
    assert len(seen) == 2 and all(status == 200 for _, status in seen)

"""Issue 11 point 5: one incident per site, whatever families its checks find.

Sandbox sites whose payload changes between visits (a TDS that serves each IP
once, a site script that serves once per cookie and IP, a payload host that
rotates families) and a site with two URLs in two families, through the real
stages in-process: crawl (Scrapy and Chromium), enrich (sandbox RDAP), notify
(outbox), re-check and escalation, with the clock moved. On SQLite and
PostgreSQL: the incident is a store path.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from crawl_support import add_urls, new_store, sandbox_config
from sqlalchemy import func, select

from crawler.items import CheckItem
from crawler.runner import crawl_due
from enrich.service import enrich_sites
from notifier.service import notify, recheck
from pipelines.store import StoreWriter
from store import incidents
from store.models import Event, Incident, IncidentUrl, Notice, NoticeItem, Site
from store.queries import export_records
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import Config
from tocsin.urls import normalise_url

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# site id -> (family at the first visit, family at the re-check)
CHANGING = {
    "incidents-once-ip": ("fake-update", "hidden-iframe"),
    "incidents-once-cookie": ("cryptominer", "injected-script"),
    "incidents-rotating": ("cryptominer", "fake-update"),
}
TWO_URLS = ("incidents-two-miner", "incidents-two-phish")


def _at(app: App, when: datetime) -> App:
    moved = App(preset=app.config, clock=Clock(frozen=when))
    moved.__dict__["db"] = app.db
    return moved


def _incidents_by_host(app: App) -> dict[str, list[Incident]]:
    with app.db.session() as session:
        rows = session.execute(
            select(Site.host, Incident).join(Incident, Incident.site_id == Site.id)
        )
        found: dict[str, list[Incident]] = {}
        for host, incident in rows:
            found.setdefault(host, []).append(incident)
        return found


def _first_notices(app: App) -> Counter[str]:
    """Level-1 notice items per ticket (first notices; one per recipient)."""
    with app.db.session() as session:
        rows = session.execute(
            select(Incident.public_id, func.count())
            .join(NoticeItem, NoticeItem.incident_id == Incident.id)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(NoticeItem.level == 1, Notice.state == "sent")
            .group_by(Incident.public_id)
        )
        return Counter(dict(rows.all()))


@pytest.mark.browser
def test_one_incident_per_site_through_changing_payloads(sandbox, tmp_path) -> None:
    """The stages meeting, on SQLite (three Chromium crawls: the store paths run on both
    engines in the test below)."""
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    config = sandbox_config(
        sandbox, tmp_path, db_url, notify={"mode": "outbox", "journal": str(tmp_path / "j.log")}
    )
    app = App(config_path=config, clock=Clock(frozen=T0))
    sites = [*CHANGING, *TWO_URLS]
    by_url = add_urls(app.db, [sandbox.url(sid) for sid in sites])
    ids = {sid: by_url[normalise_url(sandbox.url(sid))] for sid in sites}
    host = {sid: sandbox.sites[sid].host for sid in sites}

    # The first visit: each URL's first-visit family; the two-URL site in two families.
    outcomes, _ = crawl_due(app)
    first = {sid: outcomes[ids[sid]].family for sid in sites}
    assert first == {
        **{sid: fams[0] for sid, fams in CHANGING.items()},
        "incidents-two-miner": "cryptominer",
        "incidents-two-phish": "phishing",
    }
    assert {o.verdict for o in outcomes.values()} == {"malicious"}
    by_host = _incidents_by_host(app)
    assert {h: len(v) for h, v in by_host.items()} == {h: 1 for h in set(host.values())}
    two = by_host[host["incidents-two-miner"]][0]
    assert sorted(two.families) == ["cryptominer", "phishing"]
    assert two.family == two.families[0]  # the first family stays the incident's family
    assert outcomes[ids["incidents-two-miner"]].incident_id == two.id
    assert outcomes[ids["incidents-two-phish"]].incident_id == two.id
    with app.db.session() as session:
        links = session.scalars(select(IncidentUrl.url_id).where(IncidentUrl.incident_id == two.id))
        assert sorted(links) == sorted(ids[sid] for sid in TWO_URLS)
    tickets = {h: v[0].public_id for h, v in by_host.items()}

    # Enrich and notify: one ticket per site, its first notices once.
    enrich_sites(app)
    sent = notify(app).send.sent
    assert sent > 0
    first_notices = _first_notices(app)
    assert set(first_notices) == set(tickets.values())

    # The re-check a day later finds each changing site in another family: still
    # compromised, the same incident, its families grown; nothing new is sent.
    day1 = _at(app, T0 + DAY)
    report = recheck(day1)
    assert (report.checked, report.confirmed, report.resolved) == (4, 4, 0)
    by_host = _incidents_by_host(app)
    assert {h: [i.public_id for i in v] for h, v in by_host.items()} == {
        h: [t] for h, t in tickets.items()
    }
    for sid, (before, after) in CHANGING.items():
        [incident] = by_host[host[sid]]
        assert incident.families == [before, after], sid
        assert (incident.family, incident.state, incident.level) == (before, "open", 1)
    assert notify(day1).send.sent == 0
    assert _first_notices(day1) == first_notices
    with app.db.session() as session:
        added = session.scalars(select(Event).where(Event.kind == "incident.family_added"))
        assert Counter(e.data["family"] for e in added) >= Counter(
            after for _, after in CHANGING.values()
        )
        assert session.scalar(select(func.count()).select_from(Incident)) == len(tickets)

    # Past the grace, still compromised: escalation to the registrar, same tickets.
    day4 = _at(app, T0 + 4 * DAY)
    assert recheck(day4).escalated == len(tickets)
    notify(day4)
    by_host = _incidents_by_host(app)
    assert {h: (v[0].public_id, v[0].level) for h, v in by_host.items()} == {
        h: (t, 2) for h, t in tickets.items()
    }
    with app.db.session() as session:
        level2 = session.execute(
            select(Incident.public_id, Notice.subject)
            .join(NoticeItem, NoticeItem.incident_id == Incident.id)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(NoticeItem.level == 2)
        ).all()
    assert {ticket for ticket, _ in level2} == set(tickets.values())
    assert _first_notices(day4) == first_notices
    # The registrar's notice for the first-visit site advises on both its families.
    ticket = tickets[host["incidents-once-ip"]]
    texts = [
        t for t in _outbox_texts(tmp_path / "outbox") if ticket in t and "registered through" in t
    ]
    assert texts and all(
        "Hidden iframe loading a foreign site" in t and "Fake browser-update lure" in t
        for t in texts
    )


def _outbox_texts(folder) -> list[str]:
    """The text parts of every message in the outbox maildir."""
    texts = []
    for message in mailbox.Maildir(folder, factory=None, create=False):
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        texts += [
            part.get_content() for part in parsed.walk() if part.get_content_type() == "text/plain"
        ]
    return texts


def _judged(url_id: int, url: str, family: str, key: str) -> CheckItem:
    """A malicious page check as the verdict leaves it (the crawl is tested above)."""
    item = CheckItem(url_id, url, "triage", T0, route="browser", http_status=200)
    item.verdict, item.family, item.confidence = "malicious", family, 0.9
    item.rules = [f"tocsin.{family}"]
    item.iocs = {"domains": [key]}
    item.meta = {"cluster": [f"host:{key}"]}
    return item


def test_the_store_writer_keeps_one_open_incident_per_site(db_url) -> None:
    """Store paths on both engines: families join the open incident, in one batch and
    across crawls; a resolved site found again is one open incident again."""
    config = Config.model_validate({"database": {"url": db_url}})
    app = App(preset=config)
    urls = ["http://shop.example.com/", "http://shop.example.com/pay/", "http://other.example.net/"]
    by_url = add_urls(app.db, urls)
    home, pay, other = (by_url[normalise_url(u)] for u in urls)

    writer = StoreWriter(app.db, config)
    one, two, three = writer.store_batch(
        [
            _judged(home, urls[0], "card-skimmer", "skim.example"),
            _judged(pay, urls[1], "phishing", "phish.example"),
            _judged(other, urls[2], "phishing", "phish.example"),
        ],
        T0,
    )
    assert one.incident_id == two.incident_id != three.incident_id
    assert one.campaign == two.campaign != three.campaign  # the site's campaign, kept
    with app.db.session() as session:
        incident = session.get(Incident, one.incident_id)
        assert (incident.family, incident.families) == (
            "card-skimmer",
            ["card-skimmer", "phishing"],
        )
        assert session.get(Incident, three.incident_id).families == ["phishing"]

    writer = StoreWriter(app.db, config)  # a later crawl: a third family, a known one
    four, five = writer.store_batch(
        [
            _judged(home, urls[0], "cryptominer", "miner.example"),
            _judged(pay, urls[1], "phishing", "phish.example"),
        ],
        T0 + DAY,
    )
    assert four.incident_id == five.incident_id == one.incident_id
    with app.db.session() as session:
        incident = session.get(Incident, one.incident_id)
        assert incident.families == ["card-skimmer", "phishing", "cryptominer"]
        added = session.scalars(
            select(Event.data).where(
                Event.kind == "incident.family_added", Event.incident_id == incident.id
            )
        ).all()
        assert [d["family"] for d in added] == ["phishing", "cryptominer"]
        # The export: every URL of the site quotes one ticket and all its families.
        records = {r["url"]: r for r in export_records(session)}
        shop = [records[normalise_url(u)]["incident"] for u in urls[:2]]
        assert shop[0] == shop[1] and shop[0]["id"] == incident.public_id
        assert shop[0]["families"] == ["card-skimmer", "phishing", "cryptominer"]
        incidents.resolve(session, incident, T0 + DAY, reason="clean", check_id=None)

    writer = StoreWriter(app.db, config)  # compromised again, by two families at once
    six, seven = writer.store_batch(
        [
            _judged(home, urls[0], "fake-update", "update.example"),
            _judged(pay, urls[1], "cryptominer", "miner.example"),
        ],
        T0 + 2 * DAY,
    )
    assert six.incident_id == seven.incident_id

    # A URL of the site named into a campaign at ingest: the one incident moves there.
    named = "http://shop.example.com/named/"
    (hinted,) = add_urls(app.db, [named], campaign="Operation Shop").values()
    (eight,) = StoreWriter(app.db, config).store_batch(
        [_judged(hinted, named, "phishing", "phish.example")], T0 + 3 * DAY
    )
    assert eight.incident_id == six.incident_id and eight.campaign == "Operation Shop"
    with app.db.session() as session:
        site = session.scalars(select(Site).where(Site.host == "shop.example.com")).one()
        open_ = session.scalars(
            select(Incident).where(Incident.site_id == site.id, Incident.state != "resolved")
        ).all()
        assert [i.id for i in open_] == [six.incident_id]
        moved = session.scalars(select(Event).where(Event.kind == "incident.moved")).one()
        assert moved.incident_id == six.incident_id

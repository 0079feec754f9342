"""Re-checks, resolution and escalation on schedule, moving the clock with ``--now``."""

from __future__ import annotations

from pathlib import Path

from notify_helpers import DAY, T0, ScriptedCrawler, Seed, at, outbox_messages, parts
from sqlalchemy import select

from notifier.service import notify, recheck
from store.incidents import request_recheck
from store.models import Contact, Event, Incident, Notice, Site, Url
from tocsin.app import App


def _ladder(seed: Seed) -> dict[str, int]:
    return {
        "hosting": seed.contact("abuse@host.example"),
        "owner": seed.contact("security@shop.example.com", role="owner"),
        "registrar": seed.contact("abuse@registrar.example", role="registrar"),
        "cert": seed.contact("cert@csirt.example", role="cert"),
    }


def _incident(seed: Seed, c: dict[str, int], host: str = "shop.example.com") -> int:
    return seed.incident(
        host,
        ladder=[(c["hosting"], 1), (c["owner"], 1), (c["registrar"], 2), (c["cert"], 3)],
    )


def _to(app: App, tmp_path: Path) -> list[tuple[str, str]]:
    return [(str(m["To"]), str(m["Subject"])) for m in outbox_messages(tmp_path / "outbox")]


def test_a_site_cleaned_before_recheck_is_resolved_without_follow_up(
    app: App, seed: Seed, crawler: ScriptedCrawler, tmp_path: Path
) -> None:
    c = _ladder(seed)
    incident = _incident(seed, c)
    assert notify(app, checker=crawler).send.sent == 2  # hosting and owner
    crawler.states["shop.example.com"] = "clean"

    day1 = at(app, T0 + DAY)
    report = recheck(day1, checker=crawler)
    assert report.resolved == 1 and report.checked == 1
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert inc.state == "resolved" and inc.resolved_at == T0 + DAY
        assert inc.next_recheck_at is None
        resolved = s.scalars(select(Event).where(Event.kind == "incident.resolved")).one()
        assert resolved.data["seconds_to_remediation"] == DAY.total_seconds()
        hosting = s.get(Contact, c["hosting"])
        assert hosting.fixes == 1 and hosting.fix_seconds_total == DAY.total_seconds()

    for days in (4, 8, 20):
        later = at(app, T0 + days * DAY)
        assert recheck(later, checker=crawler).checked == 0
        assert notify(later, checker=crawler).send.sent == 0
    assert len(outbox_messages(tmp_path / "outbox")) == 2


def test_a_site_never_cleaned_climbs_the_ladder_on_schedule(
    app: App, seed: Seed, crawler: ScriptedCrawler, tmp_path: Path
) -> None:
    c = _ladder(seed)
    incident = _incident(seed, c)
    notify(app, checker=crawler)
    assert sorted(to for to, _ in _to(app, tmp_path)) == [
        "abuse@host.example",
        "security@shop.example.com",
    ]

    def step(days: float) -> tuple[int, int]:
        now = at(app, T0 + days * DAY)
        escalated = recheck(now, checker=crawler).escalated
        return escalated, notify(now, checker=crawler).send.sent

    assert step(1) == (0, 0)  # still malicious, within the 3-day grace
    assert step(2) == (0, 0)
    assert step(4) == (1, 3)  # registrar first notice; follow-ups to hosting and owner
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert inc.level == 2 and inc.level_reached_at == T0 + 4 * DAY
        assert inc.next_recheck_at == T0 + 8 * DAY
        registrar = s.scalars(
            select(Notice).where(Notice.recipient == "abuse@registrar.example")
        ).one()
        assert registrar.kind == "first" and registrar.level == 2
        followups = list(s.scalars(select(Notice).where(Notice.kind == "followup")))
        assert {n.recipient for n in followups} == {
            "abuse@host.example",
            "security@shop.example.com",
        }
        first_hosting = s.scalars(
            select(Notice).where(Notice.recipient == "abuse@host.example", Notice.kind == "first")
        ).one()

    messages = {
        str(m["To"]) + "/" + str(m["X-Tocsin-Ticket"]): m
        for m in outbox_messages(tmp_path / "outbox")
    }
    followup = next(
        m
        for key, m in messages.items()
        if key.startswith("abuse@host.example") and first_hosting.ticket not in key
    )
    text = parts(followup)["text"]
    assert f"follow-up to our notice {first_hosting.ticket} of 2026-11-20" in text
    assert "not a new" in text and "registrar" in text
    assert followup["In-Reply-To"] == first_hosting.message_id
    assert first_hosting.ticket in followup["Subject"]
    registrar_msg = next(m for k, m in messages.items() if k.startswith("abuse@registrar"))
    assert "Earlier notices" in parts(registrar_msg)["text"]

    assert step(6) == (0, 0)  # grace at level 2 runs from day 4
    assert step(8) == (1, 4)  # the CSIRT, plus follow-ups to the three before
    with app.db.session() as s:
        assert s.get(Incident, incident).level == 3
        cert = s.scalars(select(Notice).where(Notice.recipient == "cert@csirt.example")).one()
        assert cert.level == 3 and cert.role == "cert"
    assert step(16) == (0, 0)  # nobody above the CSIRT
    with app.db.session() as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.incident_id == incident))]
    assert kinds.count("incident.escalated") == 2
    assert kinds.count("incident.confirmed") >= 5


def test_last_minute_check_drops_a_cleaned_site_and_sends_the_rest(
    app: App, seed: Seed, crawler: ScriptedCrawler, tmp_path: Path
) -> None:
    c = _ladder(seed)
    _incident(seed, c, "cleaned.example.com")
    _incident(seed, c, "dirty.example.com")
    crawler.states["cleaned.example.com"] = "clean"
    later = at(app, T0 + DAY)  # evidence is a day old: older than notify.max_evidence_age
    report = notify(later, checker=crawler)
    assert report.rechecked == 2 and report.resolved == 1
    [hosting] = [m for m in outbox_messages(tmp_path / "outbox") if m["To"] == "abuse@host.example"]
    text = parts(hosting)["text"]
    assert "dirty[.]example[.]com" in text and "cleaned[.]example[.]com" not in text
    with app.db.session() as s:
        states = {i.id: i.state for i in s.scalars(select(Incident))}
    assert sorted(states.values()) == ["open", "resolved"]


def test_an_offline_site_is_resolved_and_an_error_is_held(
    app: App, seed: Seed, crawler: ScriptedCrawler
) -> None:
    c = _ladder(seed)
    offline = _incident(seed, c, "offline.example.com")
    flaky = _incident(seed, c, "flaky.example.com")
    notify(app, checker=crawler)
    crawler.states.update({"offline.example.com": "offline", "flaky.example.com": "error"})
    report = recheck(at(app, T0 + DAY), checker=crawler)
    assert (report.resolved, report.inconclusive) == (1, 1)
    with app.db.session() as s:
        assert s.get(Incident, offline).state == "resolved"
        assert s.get(Incident, flaky).state == "open"
        assert s.get(Incident, flaky).next_recheck_at == T0 + 2 * DAY


def test_a_level_with_nobody_left_is_skipped_once_enrichment_has_settled(
    app: App, seed: Seed, crawler: ScriptedCrawler
) -> None:
    gone = seed.contact("abuse@gone.example", bounced=True)
    registrar = seed.contact("abuse@registrar.example", role="registrar")
    settled = seed.incident("done.example.com", ladder=[(gone, 1), (registrar, 2)])
    waiting = seed.incident("partial.example.com", ladder=[(gone, 1), (registrar, 2)])
    with app.db.session() as s:
        site = s.scalars(select(Site).where(Site.host == "partial.example.com")).one()
        site.enrich_state = "partial"  # its hosting desk may still be found
    report = notify(app, checker=crawler)
    assert report.advanced == 1 and report.send.sent == 1
    with app.db.session() as s:
        assert s.get(Incident, settled).level == 2
        assert s.get(Incident, waiting).level == 0
    later = notify(at(app, T0 + app.config.escalation.grace), checker=crawler)
    assert later.advanced == 1
    with app.db.session() as s:
        assert s.get(Incident, waiting).level == 2


def test_a_recompromised_site_is_a_new_episode_and_notified_afresh(
    app: App, seed: Seed, crawler: ScriptedCrawler
) -> None:
    c = _ladder(seed)
    incident = _incident(seed, c)
    notify(app, checker=crawler)
    crawler.states["shop.example.com"] = "clean"
    recheck(at(app, T0 + DAY), checker=crawler)
    crawler.states["shop.example.com"] = "malicious"
    # the crawl finds it compromised again (record_malicious reopens the incident)
    with app.db.session() as s:
        url_ids = list(s.scalars(select(Url.id)))
    crawler(at(app, T0 + 10 * DAY), url_ids)
    with app.db.session() as s:
        inc = s.get(Incident, incident)
        assert (inc.state, inc.reopen_count, inc.level) == ("reopened", 1, 0)
    again = notify(at(app, T0 + 10 * DAY), checker=crawler)
    assert again.send.sent == 2  # hosting and owner, afresh
    with app.db.session() as s:
        kinds = {n.kind for n in s.scalars(select(Notice).where(Notice.sent_at == T0 + 10 * DAY))}
        assert kinds == {"first"}  # a new story, not a follow-up of the cleaned one
        inc = s.get(Incident, incident)
        assert inc.level == 1 and inc.first_notified == T0 + 10 * DAY
        events = [e.kind for e in s.scalars(select(Event).where(Event.incident_id == incident))]
    assert "incident.reopened" in events


def test_rechecks_asked_for_come_first_even_before_the_schedule(
    app: App, seed: Seed, crawler: ScriptedCrawler
) -> None:
    """The board's and the portal's "re-check now" are taken by the next recheck before
    anything else (also within --limit), notified or not; the claim alone resolves nothing."""
    c = _ladder(seed)
    first = _incident(seed, c, host="one.example.com")
    second = _incident(seed, c, host="two.example.com")
    notify(app, checker=crawler)
    unnotified = seed.incident("three.example.com", ladder=[])
    day2 = at(app, T0 + 2 * DAY)  # both notified incidents are due for their schedule
    with day2.db.claim() as s:
        assert request_recheck(s, s.get(Incident, second), day2.clock.now(), actor="portal:1")
        assert not request_recheck(s, s.get(Incident, second), day2.clock.now(), actor="x")
        assert request_recheck(s, s.get(Incident, unnotified), day2.clock.now(), actor="board:a")
    assert seed.get(second).state == "open"  # asking is not fixing
    crawler.states["two.example.com"] = "clean"
    crawler.states["three.example.com"] = "clean"

    report = recheck(day2, checker=crawler, limit=2)
    assert report.checked == 2 and report.resolved == 2
    assert seed.get(second).state == "resolved" and seed.get(unnotified).state == "resolved"
    assert seed.get(first).state == "open" and seed.get(second).recheck_requested_at is None
    assert recheck(day2, checker=crawler).checked == 1  # then the schedule's

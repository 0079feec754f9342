"""The analyst pages and the portal over HTTP, against the real board process on SQLite
and PostgreSQL: log-in, sessions and CSRF, rate limits, security headers, escaping,
re-check requests, TLP labels, search, and the portal's boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from board_support import HOSTILE_AS, HOSTILE_CAMPAIGN, HOSTILE_TITLE, HOSTILE_URL, BoardProcess
from sqlalchemy import delete, select

from store.db import Database
from store.models import BoardFailure, Contact, Event, Incident

pytestmark = pytest.mark.pg
PASSWORD = "a long enough password"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


@pytest.fixture(scope="module")
def analyst(seeded) -> str:
    _, _, cli = seeded
    made = cli("user", "add", "alice", "--role", "analyst", "--password-stdin", input=PASSWORD)
    assert made.returncode == 0, made.stderr
    return "alice"


@contextmanager
def logged_in(board, name: str = "alice", password: str = PASSWORD) -> Iterator[httpx.Client]:
    with board.client() as http:
        form = http.get("/login")
        answer = http.post(
            "/login",
            data={"csrf": csrf_of(form.text), "name": name, "password": password, "next": "/"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
        yield http


def test_pages_need_a_session_and_the_session_cookie_is_locked_down(seeded, analyst) -> None:
    _, board, _ = seeded
    with board.client() as http:
        for path in ("/", "/campaigns/1", "/incidents/1", "/networks/64500", "/search?q=x"):
            answer = http.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith(
                "/login?next="
            ), path
        form = http.get("/login")
        answer = http.post(
            "/login",
            data={
                "csrf": csrf_of(form.text),
                "name": "alice",
                "password": PASSWORD,
                "next": "//evil.example/",
            },
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert "tocsin_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback; https sets it
        assert http.get("/").status_code == 200
        logout = http.post("/logout", data={"csrf": csrf_of(http.get("/").text)})
        assert logout.status_code == 303
        assert http.get("/").status_code == 303  # the session is gone


@pytest.fixture
def own_board(seeded, module_db_url) -> Iterator[BoardProcess]:
    """The board, with the failures this test counted forgotten afterwards, so the
    module's other tests (all from 127.0.0.1) are not rate-limited by it."""
    yield seeded[1]
    db = Database(module_db_url)
    with db.session() as s:
        s.execute(delete(BoardFailure))
    db.dispose()


def test_log_in_needs_its_csrf_token_and_failures_are_rate_limited(own_board, analyst) -> None:
    board = own_board
    with board.client() as http:
        http.get("/login")
        forged = http.post("/login", data={"csrf": "x", "name": "alice", "password": PASSWORD})
        assert forged.status_code == 403
    with board.client() as http:
        codes = []
        for _ in range(6):
            form = http.get("/login")
            codes.append(
                http.post(
                    "/login",
                    data={"csrf": csrf_of(form.text), "name": "alice", "password": "wrong!!!"},
                ).status_code
            )
        assert codes == [401] * 5 + [429]
        form = http.get("/login")
        late = http.post(
            "/login", data={"csrf": csrf_of(form.text), "name": "alice", "password": PASSWORD}
        )
        assert late.status_code == 429 and int(late.headers["retry-after"]) > 0


def test_security_headers_on_pages_api_and_portal(seeded, analyst) -> None:
    store, board, _ = seeded
    with logged_in(board) as http:
        page = http.get("/")
        api = http.get("/api/v1/status")
        portal = http.get(f"/portal/{store.portal['abuse@example-hosting.net']}")
    for answer in (page, api, portal):
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'", csp)
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin"
    assert portal.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text.replace('<script src="/static/board.js" defer></script>', "")


def test_hostile_text_is_escaped_everywhere(seeded, analyst) -> None:
    store, board, _ = seeded
    with logged_in(board) as http:
        pages = [
            http.get("/").text,
            http.get(f"/campaigns/{store.campaigns[HOSTILE_CAMPAIGN]}").text,
            http.get(f"/incidents/{store.tickets['x1']}").text,
            http.get(f"/incidents/{store.tickets['a3']}").text,
            http.get("/networks/64501").text,
            http.get("/search?q=xss.example").text,
        ]
    everything = "\n".join(pages)
    for raw in (HOSTILE_TITLE, HOSTILE_URL, HOSTILE_CAMPAIGN, "<script>alert('reply')</script>"):
        assert raw not in everything
    assert "&lt;/title&gt;&lt;script&gt;alert(" in pages[2]
    assert "onerror=alert(1)&gt;" in pages[2]
    assert "&lt;svg onload=alert(" in pages[0]
    assert 'href="javascript' not in everything and "href='javascript" not in everything
    assert HOSTILE_AS.replace('"', "&#34;") in pages[4]


def test_incident_page_has_the_evidence_notices_replies_and_history(seeded, analyst) -> None:
    store, board, _ = seeded
    with logged_in(board) as http:
        html = http.get(f"/incidents/{store.tickets['a1']}").text
        image = http.get(f"/evidence/{store.screenshot}")
        missing = http.get("/evidence/" + "0" * 64)
    assert f'src="/evidence/{store.screenshot}"' in html
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert missing.status_code == 404
    assert "exfiltration to hxxps://skim-cdn[.]example" in html
    assert "tocsin_card_skimmer" in html
    assert "abuse@example-hosting.net" in html and "webmaster@shop-a.example" in html
    assert "We found malicious content on:" in html  # the notice's full text
    assert "reply" in html and "incident.opened" in html and "incident.notified" in html


def test_recheck_and_tlp_buttons_need_csrf_and_are_logged(seeded, analyst, module_db_url) -> None:
    store, board, _ = seeded
    ticket = store.tickets["a3"]
    with logged_in(board) as http:
        assert http.post(f"/incidents/{ticket}/recheck", data={}).status_code == 403
        csrf = csrf_of(http.get(f"/incidents/{ticket}").text)
        done = http.post(f"/incidents/{ticket}/recheck", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"].endswith("queued=yes")
        again = http.post(f"/incidents/{ticket}/recheck", data={"csrf": csrf})
        assert again.headers["location"].endswith("queued=no")
        label = http.post(f"/incidents/{ticket}/tlp", data={"csrf": csrf, "tlp": "red"})
        assert label.status_code == 303
        assert "TLP:RED" in http.get(f"/incidents/{ticket}").text
    db = Database(module_db_url)
    with db.session() as s:
        incident = s.scalars(select(Incident).where(Incident.public_id == ticket)).one()
        assert incident.recheck_requested_at is not None and incident.tlp == "red"
        kinds = [
            (e.kind, e.actor)
            for e in s.scalars(select(Event).where(Event.incident_id == incident.id))
        ]
    db.dispose()
    assert ("incident.recheck_requested", "board:alice") in kinds
    assert ("incident.tlp", "board:alice") in kinds


def test_search_finds_by_ticket_notice_ticket_asn_ip_host_url_and_campaign(seeded, analyst) -> None:
    store, board, _ = seeded
    with logged_in(board) as http:
        by_ticket = http.get(f"/search?q={store.tickets['a1'].lower()}")
        assert by_ticket.status_code == 303
        assert by_ticket.headers["location"] == f"/incidents/{store.tickets['a1']}"
        notice_ticket = next(
            t for k, t in store.notice_tickets.items() if k.startswith("abuse@other")
        )
        by_notice = http.get(f"/search?q={notice_ticket}")
        assert by_notice.headers["location"] == f"/incidents/{store.tickets['a3']}"
        assert http.get("/search?q=AS64501").headers["location"] == "/networks/64501"
        by_ip = http.get("/search?q=192.0.2.10").text
        assert store.tickets["a1"] in by_ip and store.tickets["a2"] not in by_ip
        by_host = http.get("/search?q=shop-b.example").text
        assert store.tickets["a2"] in by_host
        by_url = http.get("/search?q=http://shop-c.example/checkout/").text
        assert store.tickets["a3"] in by_url
        by_name = http.get("/search?q=skimmer").text
        assert f'href="/campaigns/{store.campaigns["skimmer-wave"]}"' in by_name
        nothing = http.get("/search?q=nothing-here.example").text
        assert "Nothing found" in nothing


def test_campaign_list_filters_sorts_and_pages(seeded, analyst) -> None:
    _, board, _ = seeded
    with logged_in(board) as http:

        def names(query: str) -> list[str]:
            html = http.get("/" + query).text
            return re.findall(r'<td><a href="/campaigns/\d+">([^<]*)</a></td>', html)

        assert names("?sort=name&dir=asc") == sorted(names("?sort=name&dir=asc"))
        assert names("?label=green") == ["green-wave"]
        assert names("?family=card-skimmer") == ["skimmer-wave"]
        assert names("?state=escalated") == ["skimmer-wave"]
        assert names("?q=GREEN") == ["green-wave"]
        assert names("?state=resolved") == ["green-wave"]
        assert names("?page=99") == []


def test_the_portal_shows_only_its_contacts_incidents(seeded, module_db_url, own_board) -> None:
    store, board, _ = seeded
    hosting = store.portal["abuse@example-hosting.net"]
    other = store.portal["abuse@other-net.example"]
    with board.client() as http:
        mine = http.get(f"/portal/{hosting}").text
        theirs = http.get(f"/portal/{other}").text
        for key in ("a1", "a2", "g1", "x1"):
            assert store.tickets[key] in mine
        assert store.tickets["a3"] not in mine
        assert store.tickets["a3"] in theirs and store.tickets["a1"] not in theirs
        assert f"/portal/{hosting}/evidence/{store.screenshot}" in mine
        assert http.get(f"/portal/{hosting}/evidence/{store.screenshot}").status_code == 200
        # Someone else's incident through my portal: 404, and nothing is queued.
        sneaky = http.post(
            f"/portal/{hosting}/recheck",
            data={"csrf": csrf_of(mine), "incident": store.tickets["a3"]},
        )
        assert sneaky.status_code == 404
        # My own, without the form's token: nothing happens.
        no_csrf = http.post(f"/portal/{hosting}/recheck", data={"incident": store.tickets["x1"]})
        assert no_csrf.headers["location"].endswith("done=expired")
        done = http.post(
            f"/portal/{hosting}/recheck",
            data={"csrf": csrf_of(mine), "incident": store.tickets["x1"]},
        )
        assert done.status_code == 303 and done.headers["location"].endswith("done=recheck")
        prefs = http.post(
            f"/portal/{hosting}/preferences",
            data={"csrf": csrf_of(mine), "language": "ja", "optout": ["phishing", "bogus"]},
        )
        assert prefs.headers["location"].endswith("done=saved")
    db = Database(module_db_url)
    with db.session() as s:
        contact = s.scalars(
            select(Contact).where(Contact.email == "abuse@example-hosting.net")
        ).one()
        assert contact.language == "ja" and contact.optout_types == ["phishing"]
        x1 = s.scalars(select(Incident).where(Incident.public_id == store.tickets["x1"])).one()
        a3 = s.scalars(select(Incident).where(Incident.public_id == store.tickets["a3"])).one()
        assert x1.recheck_requested_at is not None and x1.state == "open"
        actors = set(s.scalars(select(Event.actor).where(Event.incident_id == a3.id)))
        assert not any(actor.startswith("portal:") for actor in actors)
    db.dispose()


def test_bad_portal_tokens_all_get_the_same_404_then_429(seeded, own_board) -> None:
    store, _, _ = seeded
    board = own_board
    good = store.portal["abuse@example-hosting.net"]
    body, tag = good.split(".")
    bad = [
        store.portal["expired"],
        store.portal["revoked"],
        f"{body}.{'0' * len(tag)}",  # forged signature
        "x" * 300,
        "no-such-token",
    ]
    with board.client(headers={"X-Forwarded-For": "203.0.113.9"}) as http:
        answers = [http.get(f"/portal/{token}") for token in bad]
        assert [a.status_code for a in answers] == [404] * 5
        assert len({a.text for a in answers}) == 1  # nothing tells them apart
        # The forwarded header is not believed (no trusted proxy): this address is
        # blocked, so a sixth wrong guess gets 429; its valid link still works.
        late = http.get("/portal/another-guess")
        assert late.status_code == 429 and int(late.headers["retry-after"]) > 0
        assert http.get(f"/portal/{good}").status_code == 200

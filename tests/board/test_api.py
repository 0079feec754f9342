"""The HTTP API against the real board process, on SQLite and PostgreSQL: tokens and
roles, the contract's shapes, every kind of bad input answered with its 4xx, and TLP."""

from __future__ import annotations

import json

import pytest
from board_support import HOSTILE_AS, HOSTILE_CAMPAIGN

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def tokens(seeded) -> dict[str, str]:
    _, _, cli = seeded
    made = {}
    for name, role in (("ana", "analyst"), ("rita", "researcher"), ("rex", "researcher")):
        result = cli("token", "create", name, "--role", role)
        assert result.returncode == 0, result.stderr
        made[name] = result.stdout.strip()
        assert made[name].startswith("tcs_") and len(made[name]) > 40
    return made


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_and_openapi_need_no_token(seeded) -> None:
    _, board, _ = seeded
    with board.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        doc = http.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/submissions", "/submissions/{public_id}", "/urls", "/status", "/export.csv"):
        assert path in doc["paths"], path


def test_a_missing_or_wrong_token_is_401_and_the_role_403(seeded, tokens) -> None:
    _, board, _ = seeded
    with board.client() as http:
        missing = http.get("/api/v1/status")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in missing.json()["error"]
        wrong = http.get("/api/v1/status", headers=auth("tcs_" + "x" * 43))
        assert wrong.status_code == 401 and wrong.json() == {
            "error": "the bearer token is not valid"
        }
        basic = http.get("/api/v1/status", headers={"Authorization": "Basic YTpi"})
        assert basic.status_code == 401
        # A researcher may not export everything; an analyst may.
        assert http.get("/api/v1/export.csv", headers=auth(tokens["rita"])).status_code == 403
        export = http.get("/api/v1/export.csv", headers=auth(tokens["ana"]))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = export.text.splitlines()
    # tlp, then the columns added after it (new columns go at the end)
    assert lines[0].startswith("url,verdict,family") and ",resolved,tlp," in lines[0] + ","
    assert lines[0].endswith(",contact_bounces")
    # A formula chosen by a third party (the AS name) is defused in the CSV.
    assert f"'{HOSTILE_AS}".replace('"', '""') in export.text
    assert ',"=HYPERLINK' not in export.text


def test_revoked_token_stops_working_at_once(seeded) -> None:
    _, board, cli = seeded
    token = cli("token", "create", "temp", "--role", "researcher").stdout.strip()
    with board.client() as http:
        assert http.get("/api/v1/status", headers=auth(token)).status_code == 200
        assert cli("token", "revoke", "temp").returncode == 0
        assert http.get("/api/v1/status", headers=auth(token)).status_code == 401
    listed = cli("token", "list").stdout
    assert "temp" in listed and token not in listed  # only the prefix is ever shown


def test_bad_submissions_get_their_4xx_never_a_500(seeded, tokens) -> None:
    _, board, _ = seeded
    headers = {**auth(tokens["rita"]), "Content-Type": "application/json"}
    cases = [
        (b"{not json", 400, "malformed JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed JSON"),  # nesting past the parser's limit
        (json.dumps({"urls": ["http://a.example/"], "colour": "red"}).encode(), 422, "unknown"),
        (json.dumps({"urls": "http://a.example/"}).encode(), 422, "urls"),
        (json.dumps({"urls": [1, 2]}).encode(), 422, "urls.0"),
        (json.dumps({"urls": [], "source": ""}).encode(), 422, "source"),
        (json.dumps({"urls": ["x"] * 10_001}).encode(), 413, "max_urls"),
        (json.dumps({"urls": ["http://a.example/" + "a" * 1024] * 1100}).encode(), 413, "max_body"),
    ]
    with board.client() as http:
        for body, status, words in cases:
            answer = http.post("/api/v1/submissions", content=body, headers=headers)
            assert answer.status_code == status, (body[:60], answer.text)
            assert words in answer.json()["error"], answer.json()
        assert (
            http.get("/api/v1/urls?verdict=evil", headers=auth(tokens["rita"])).status_code == 422
        )
        assert http.get("/api/v1/urls?cursor=abc", headers=auth(tokens["rita"])).status_code == 422
        assert http.get("/api/v1/urls?limit=0", headers=auth(tokens["rita"])).status_code == 422
        assert (
            http.get("/api/v1/networks/notanumber", headers=auth(tokens["ana"])).status_code == 422
        )
        assert http.get("/api/v1/nothing", headers=auth(tokens["ana"])).status_code == 404
        assert http.get("/healthz").status_code == 200  # the board is still up


def test_a_submission_is_accounted_like_ingest_and_is_its_submitters(seeded, tokens) -> None:
    _, board, _ = seeded
    urls = [
        "http://new-one.example/login.php",
        "http://new-one.example/login.php",  # the same again: duplicate
        "javascript:alert(1)",
        "",
        "http://bad host.example/",
        "http://new-two.example/a\r\nInjected: yes",
        "shop-a.example/checkout/",  # already known from the seed
    ]
    with board.client() as http:
        answer = http.post(
            "/api/v1/submissions",
            json={"urls": urls, "source": "rita-list", "campaign": None},
            headers=auth(tokens["rita"]),
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["lines"] == 7 and body["new"] == 1 and body["duplicate"] == 2
        rejected = {r["line"]: r["reason"] for r in body["rejected"]}
        assert rejected == {
            "javascript:alert(1)": "bad-scheme",
            "": "no-url",
            "http://bad host.example/": "bad-host",
            "http://new-two.example/a\r\nInjected: yes": "control-char",
        }
        assert body["new"] + body["duplicate"] + len(body["rejected"]) == body["lines"]
        sid = body["id"]
        assert sid.startswith("SUB-")

        mine = http.get(f"/api/v1/submissions/{sid}", headers=auth(tokens["rita"])).json()
        assert mine["id"] == sid and mine["source"] == "rita-list"
        assert [u["url"] for u in mine["urls"]] == [
            "http://new-one.example/login.php",
            "http://shop-a.example/checkout/",
        ]
        pending, known = mine["urls"]
        assert pending["verdict"] == "pending" and pending["incident"] is None
        # The known URL's full record, though its campaign is TLP:AMBER: it is hers.
        assert known["verdict"] == "malicious" and known["incident"]["state"] == "open"
        assert known["tlp"] == "TLP:AMBER"
        assert {n["recipient"] for n in known["notified"]} == {
            "abuse@example-hosting.net",
            "webmaster@shop-a.example",
        }
        assert all(n["sent"] for n in known["notified"])
        # Long submissions come in pages.
        first = http.get(f"/api/v1/submissions/{sid}?limit=1", headers=auth(tokens["rita"]))
        page1 = first.json()
        assert [u["url"] for u in page1["urls"]] == ["http://new-one.example/login.php"]
        assert page1["next"] and len(page1["rejected"]) == 4
        rest = http.get(
            f"/api/v1/submissions/{sid}?limit=10&cursor={page1['next']}",
            headers=auth(tokens["rita"]),
        ).json()
        assert [u["url"] for u in rest["urls"]] == [
            "http://new-one.example/login.php",  # line 2, the duplicate
            "http://shop-a.example/checkout/",
        ]
        assert rest["next"] is None
        # Someone else's submission is not there for another researcher; an analyst sees it.
        other = http.get(f"/api/v1/submissions/{sid}", headers=auth(tokens["rex"]))
        assert other.status_code == 404
        assert (
            http.get(f"/api/v1/submissions/{sid}", headers=auth(tokens["ana"])).status_code == 200
        )
        listed = http.get("/api/v1/submissions", headers=auth(tokens["rex"])).json()["items"]
        assert sid not in [s["id"] for s in listed]


def test_tlp_decides_what_a_researcher_sees(seeded, tokens) -> None:
    store, board, _ = seeded
    with board.client() as http:

        def get(path: str, who: str) -> dict:
            answer = http.get(path, headers=auth(tokens[who]))
            assert answer.status_code == 200, answer.text
            return answer.json()

        names = {c["name"]: c["tlp"] for c in get("/api/v1/campaigns", "ana")["items"]}
        assert names == {
            "skimmer-wave": "TLP:AMBER",
            "green-wave": "TLP:GREEN",
            HOSTILE_CAMPAIGN: "TLP:AMBER",
        }
        assert [c["name"] for c in get("/api/v1/campaigns", "rex")["items"]] == ["green-wave"]
        assert [c["name"] for c in get("/api/v1/status", "rex")["campaigns"]] == ["green-wave"]
        assert get("/api/v1/status", "rex")["bounces"]["contacts"] == []  # addresses: analysts'
        assert len(get("/api/v1/status", "ana")["campaigns"]) == 3

        amber = store.campaigns["skimmer-wave"]
        assert (
            http.get(f"/api/v1/campaigns/{amber}", headers=auth(tokens["rex"])).status_code == 404
        )
        green = get(f"/api/v1/campaigns/{store.campaigns['green-wave']}", "rex")
        assert green["remediation"]["notified"] == 1

        a1, g1 = store.tickets["a1"], store.tickets["g1"]
        assert http.get(f"/api/v1/incidents/{a1}", headers=auth(tokens["rex"])).status_code == 404
        seen = get(f"/api/v1/incidents/{g1}", "rex")
        assert seen["tlp"] == "TLP:GREEN" and seen["notices"][0]["recipient"] is None
        assert "text" not in seen["notices"][0]
        full = get(f"/api/v1/incidents/{a1}", "ana")
        assert full["notices"][0]["recipient"] and "malicious content" in full["notices"][0]["text"]

        urls = get("/api/v1/urls", "rex")["items"]
        assert {u["host"] for u in urls} == {"blog-g.example"}
        listed = get("/api/v1/incidents", "rex")
        assert [i["id"] for i in listed["items"]] == [g1] and listed["total"] == 1


def test_url_list_pages_with_a_cursor_and_filters(seeded, tokens) -> None:
    _, board, _ = seeded
    with board.client() as http:
        seen, cursor = [], None
        while True:
            query = "/api/v1/urls?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = http.get(query, headers=auth(tokens["ana"])).json()
            seen += [u["url"] for u in page["items"]]
            cursor = page["next"]
            if cursor is None:
                break
        everything = http.get("/api/v1/urls?limit=1000", headers=auth(tokens["ana"])).json()
        assert seen == [u["url"] for u in everything["items"]] and len(seen) == len(set(seen))
        on_net = http.get("/api/v1/urls?asn=64501", headers=auth(tokens["ana"])).json()["items"]
        assert [u["host"] for u in on_net] == ["shop-c.example"]
        skim = http.get(
            "/api/v1/urls?campaign=skimmer-wave&verdict=malicious", headers=auth(tokens["ana"])
        ).json()["items"]
        assert sorted(u["host"] for u in skim) == [
            "shop-a.example",
            "shop-b.example",
            "shop-c.example",
        ]
        assert all(set(u) >= {"url", "verdict", "incident", "contacts", "tlp"} for u in skim)


def test_network_shape_shows_an_unresponsive_desk(seeded, tokens) -> None:
    _, board, _ = seeded
    with board.client() as http:
        net = http.get("/api/v1/networks/64500", headers=auth(tokens["rita"])).json()
        bounced = http.get("/api/v1/networks/64501", headers=auth(tokens["rita"])).json()
        assert http.get("/api/v1/networks/65000", headers=auth(tokens["rita"])).status_code == 404
    assert net == {
        "asn": 64500,
        "as_name": "EXAMPLE-NET",
        "incidents": {"open": 2, "resolved": 2},
        "notices": {"sent": 2, "bounced": 0, "replied": 1},
        "median_days_to_resolve": 2.96,
    }
    assert bounced["notices"] == {"sent": 1, "bounced": 1, "replied": 0}
    assert bounced["as_name"] == HOSTILE_AS

"""The evidence package from the board's incident and campaign pages: analysts only
(issue 15, point 1), against the real board process on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

pytestmark = pytest.mark.pg
PASSWORD = "a long enough password"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


@pytest.fixture(scope="module")
def tokens(seeded) -> dict[str, str]:
    _, _, cli = seeded
    made = cli("user", "add", "alice", "--role", "analyst", "--password-stdin", input=PASSWORD)
    assert made.returncode == 0, made.stderr
    out = {}
    for name, role in (("ana", "analyst"), ("rita", "researcher")):
        done = cli("token", "create", name, "--role", role)
        assert done.returncode == 0, done.stderr
        out[role] = re.search(r"tcs_\S+", done.stdout)[0]
    return out


def test_an_analyst_downloads_the_incident_package(seeded, tokens) -> None:
    store, board, _ = seeded
    ticket = store.tickets["x1"]
    with board.client() as http:
        form = http.get("/login")
        http.post(
            "/login",
            data={"csrf": csrf_of(form.text), "name": "alice", "password": PASSWORD, "next": "/"},
        )
        page = http.get(f"/incidents/{ticket}")
        assert f'href="/incidents/{ticket}/package"' in page.text
        answer = http.get(f"/incidents/{ticket}/package")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert f"tocsin-package-{ticket}.zip" in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    manifest = json.loads(archive.read("manifest.json"))
    assert [i["ticket"] for i in manifest["incidents"]] == [ticket]
    assert archive.testzip() is None


def test_an_analyst_token_downloads_the_campaign_package(seeded, tokens) -> None:
    store, board, _ = seeded
    campaign = store.campaigns["skimmer-wave"]
    with board.client(headers={"Authorization": f"Bearer {tokens['analyst']}"}) as http:
        answer = http.get(f"/campaigns/{campaign}/package")
        assert http.get("/campaigns/99999/package").status_code == 404
    assert answer.status_code == 200, answer.text
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(answer.content)).read("manifest.json"))
    assert manifest["scope"] == {"campaign": "skimmer-wave"}
    assert len(manifest["incidents"]) == 3


def test_no_one_else_gets_a_package(seeded, tokens) -> None:
    store, board, _ = seeded
    ticket = store.tickets["g1"]  # TLP:GREEN: a researcher may read it in the API, not this
    campaign = store.campaigns["green-wave"]
    paths = (f"/incidents/{ticket}/package", f"/campaigns/{campaign}/package")
    with board.client(headers={"Authorization": f"Bearer {tokens['researcher']}"}) as http:
        for path in paths:
            answer = http.get(path)
            assert answer.status_code == 403, path
            assert "PK" not in answer.text[:2]
    with board.client(headers={"Authorization": "Bearer tcs_wrong"}) as http:
        assert http.get(paths[0]).status_code == 401
    with board.client() as http:
        for path in paths:
            answer = http.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
    portal = next(iter(store.portal.values()))
    with board.client() as http:
        assert http.get(f"/portal/{portal}/package").status_code == 404

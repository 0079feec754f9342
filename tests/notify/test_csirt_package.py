"""The national CSIRT's notice points at the evidence package through the portal (issue 15,
point 4): the notice lists what the package holds and links to it, no zip is attached, and
only the CSIRT's own token fetches a package of only its incidents."""

from __future__ import annotations

import io
import json
import re
import zipfile
from html import unescape
from pathlib import Path

from notify_helpers import DAY, T0, ScriptedCrawler, Seed, at, make_app, outbox_messages, parts
from starlette.testclient import TestClient

from board.app import create_app
from handoff.verify import verify_package
from notifier.service import notify, recheck
from store.models import Incident
from tocsin.clock import Clock

BASE = "https://board.tocsin.example"
CERT = "cert@csirt.example"
HOSTING = "abuse@host.example"


def _climb(db_url: str, seed: Seed, tmp_path: Path) -> tuple[object, str, str]:
    """Two sites on one host; only the first has a CSIRT rung and climbs to it."""
    app = make_app(
        db_url, tmp_path, notify={"html": True}, evidence={"dir": str(tmp_path / "evidence")}
    )
    hosting = seed.contact(HOSTING)
    registrar = seed.contact("abuse@registrar.example", role="registrar")
    cert = seed.contact(CERT, role="cert")
    climbing = seed.incident("shop.example.com", ladder=[(hosting, 1), (registrar, 2), (cert, 3)])
    other = seed.incident("blog.example.net", ladder=[(hosting, 1)])
    crawler = ScriptedCrawler()
    notify(app, checker=crawler)
    for days in (4, 8):
        now = at(app, T0 + days * DAY)
        recheck(now, checker=crawler)
        notify(now, checker=crawler)
    with app.db.session() as s:
        tickets = (s.get(Incident, climbing).public_id, s.get(Incident, other).public_id)
    return app, *tickets


def _link(text: str) -> str:
    return re.search(rf"{re.escape(BASE)}/portal/(\S+)/package", text)[1]


def test_the_csirt_notice_lists_the_package_and_its_link_fetches_only_its_incidents(
    db_url: str, seed: Seed, tmp_path: Path
) -> None:
    app, mine, not_mine = _climb(db_url, seed, tmp_path)
    messages = outbox_messages(tmp_path / "outbox")
    [to_cert] = [m for m in messages if str(m["To"]) == CERT]
    body = parts(to_cert)
    text, html = body["text"], body["html"]
    assert "== Evidence package ==" in text
    for line in (
        "every check's record",
        "screenshots and the page's DOM",
        "HAR 1.2",
        'encrypted with the password "infected"',
        "every notice sent, with delivery results",
        "the incident's timeline",
        "manifest.json and SHA256SUMS",
    ):
        assert line in text and line in unescape(html)
    assert "RFC 3161" not in text  # package.tsa_url is not set
    assert f"incidents/{mine}/" in text and not_mine not in text
    token = _link(text)
    assert f'href="{BASE}/portal/{token}/package"' in html
    # Linked, not attached: the only attachments are the CSV and the X-ARF report.
    names = [p.get_filename() for p in to_cert.walk() if p.get_filename()]
    assert names and not any(n.endswith(".zip") for n in names)
    assert not any(p.get_content_type() == "application/zip" for p in to_cert.walk())
    # Nobody below the CSIRT is told about a package.
    for message in messages:
        if str(message["To"]) != CERT:
            assert "/package" not in parts(message)["text"]

    board = create_app(app.config, app.db, clock=Clock(frozen=T0 + 8 * DAY))
    with TestClient(board, base_url=BASE) as http:
        answer = http.get(f"/portal/{token}/package")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        forged = http.get(f"/portal/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/package")
        hosting_token = next(_portal(parts(m)["text"]) for m in messages if str(m["To"]) == HOSTING)
        assert http.get(f"/portal/{hosting_token}").status_code == 200
        hosting_answer = http.get(f"/portal/{hosting_token}/package")
    assert forged.status_code == 404 and "PK" not in forged.text[:2]
    assert hosting_answer.status_code == 404 and "PK" not in hosting_answer.text[:2]

    path = tmp_path / "from-portal.zip"
    path.write_bytes(answer.content)
    report = verify_package(path, None)
    assert report.ok, report.problems
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(answer.content)).read("manifest.json"))
    assert [i["ticket"] for i in manifest["incidents"]] == [mine]
    assert manifest["scope"] == {"incidents": [mine]}
    names = zipfile.ZipFile(path).namelist()
    assert any(n.startswith(f"incidents/{mine}/") for n in names)
    assert not any(not_mine in n for n in names)


def _portal(text: str) -> str:
    return re.search(rf"{re.escape(BASE)}/portal/([^\s/]+)", text)[1]

"""An evidence package of the sandbox's confirmed incidents, from the shared catalogue
crawl (real Chromium visits, real evidence): it verifies, timestamp included, and its
HAR files are HAR 1.2 (issue 15)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jsonschema_rs
from crawl_support import run_cli
from sqlalchemy import select

from store.models import Incident

HAR_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "har" / "har-1.2.schema.json"


def test_a_package_of_the_confirmed_incidents_verifies(catalogue_crawl) -> None:
    crawl = catalogue_crawl
    with crawl.db.session() as session:
        tickets = list(session.scalars(select(Incident.public_id).order_by(Incident.id)))
    assert len(tickets) >= 10
    target = crawl.folder / "incidents.zip"
    made = run_cli(crawl.folder, crawl.config, "package", *tickets, "-o", str(target))
    assert made.returncode == 0, made.stderr
    assert "; timestamped" in made.stdout  # the sandbox config names its TSA
    checked = run_cli(crawl.folder, crawl.config, "package", "--verify", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "timestamped" in checked.stdout

    archive = zipfile.ZipFile(target)
    names = archive.namelist()
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(i["ticket"] for i in manifest["incidents"]) == sorted(tickets)
    validator = jsonschema_rs.validator_for(json.loads(HAR_SCHEMA.read_text()))
    hars = [n for n in names if n.endswith("/requests.har")]
    assert hars
    for name in hars:
        har = json.loads(archive.read(name))
        assert validator.is_valid(har), name
    assert sum(1 for n in names if n.endswith("/screenshot.png")) >= len(tickets) // 2
    checks = [json.loads(archive.read(n)) for n in names if n.endswith("/check.json")]
    matched = [m for c in checks for m in c["matches"]]
    assert matched, "no YARA rule's bytes were found again"
    for match in matched:
        found = bytes.fromhex(match["bytes_hex"])
        assert found
        assert match["file"].split("!")[0] in names
    html = archive.read("timeline.html").decode()
    assert "<script" not in html.lower()

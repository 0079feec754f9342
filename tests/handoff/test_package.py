"""`tocsin package`: the zip an investigator opens without tocsin (issue 15, point 1)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import jsonschema_rs
import pytest
from handoff_support import DOM, NOW, PAYLOAD, Seeded

from handoff.package import select_incidents, write_package
from handoff.verify import verify_package
from store.db import Database
from store.evidence import unzip_payload
from tocsin.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
HAR_SCHEMA = REPO / "tests" / "data" / "har" / "har-1.2.schema.json"


def make(seeded: Seeded, tmp_path: Path, idents: list[str], campaign: str | None = None) -> Path:
    db = Database(seeded.db_url)
    try:
        with db.session() as session:
            ids = select_incidents(session, idents, campaign)
        scope = {"campaign": campaign} if campaign else {"incidents": idents}
        path = tmp_path / "package.zip"
        write_package(db, seeded.config, ids, path, NOW, scope)
        return path
    finally:
        db.dispose()


def test_package_holds_every_part_and_verifies(seeded: Seeded, tmp_path: Path) -> None:
    ticket = seeded.store.tickets["x1"]
    path = make(seeded, tmp_path, [ticket, seeded.store.tickets["a1"]])
    archive = zipfile.ZipFile(path)
    names = set(archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["operator"] == "CERT-Test <duty@cert.example>"
    assert manifest["tocsin_version"] and manifest["created"]
    tlps = {i["ticket"]: i["tlp"] for i in manifest["incidents"]}
    assert tlps == {ticket: "TLP:RED", seeded.store.tickets["a1"]: "TLP:AMBER"}
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == names - {"manifest.json", "SHA256SUMS"}
    for name, entry in listed.items():
        data = archive.read(name)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    folder = f"incidents/{ticket}"
    check_dir = next(n.rsplit("/", 1)[0] for n in names if n.endswith("/requests.har"))
    check = json.loads(archive.read(f"{check_dir}/check.json"))
    assert check["url"] and check["final_url"] and check["verdict"] == "malicious"
    assert check["iocs"]["domains"] == ["skim-cdn.example"]
    assert check["redirect_chain"] == [{"url": check["url"], "status": 200}]
    assert archive.read(f"{check_dir}/dom.html.txt").decode() == DOM
    assert archive.read(f"{check_dir}/screenshot.png").startswith(b"\x89PNG")
    payload_zip = f"{folder}/payloads/{hashlib.sha256(PAYLOAD).hexdigest()}.zip"
    assert list(unzip_payload(archive.read(payload_zip)).values()) == [PAYLOAD]
    # Each notice as sent, its delivery, bounce and reply.
    a1 = f"incidents/{seeded.store.tickets['a1']}/notices"
    deliveries = json.loads(archive.read(f"{a1}/deliveries.json"))
    assert {d["state"] for d in deliveries} == {"sent"}
    for delivery in deliveries:
        assert archive.read(delivery["file"]).startswith(b"From: tocsin")
    assert any(d["replies"] for d in deliveries)
    a3 = seeded.store.tickets["a3"]
    events = json.loads(archive.read(f"{folder}/timeline.json"))
    assert [e["kind"] for e in events][:1] == ["incident.opened"]
    assert "README.txt" in names and "timeline.html" in names
    report = verify_package(path, None)
    assert report.ok, report.problems
    assert report.files == len(listed)
    assert a3 not in json.dumps(manifest)


def test_bounces_are_kept(seeded: Seeded, tmp_path: Path) -> None:
    ticket = seeded.store.tickets["a3"]
    archive = zipfile.ZipFile(make(seeded, tmp_path, [ticket]))
    deliveries = json.loads(archive.read(f"incidents/{ticket}/notices/deliveries.json"))
    assert deliveries[0]["state"] == "bounced"
    assert deliveries[0]["bounces"][0]["data"]["failed"][0][1] == "5.1.1"


def test_har_is_valid_har_1_2(seeded: Seeded, tmp_path: Path) -> None:
    from haralyzer import HarParser

    archive = zipfile.ZipFile(make(seeded, tmp_path, [seeded.store.tickets["x1"]]))
    name = next(n for n in archive.namelist() if n.endswith("requests.har"))
    har = json.loads(archive.read(name))
    validator = jsonschema_rs.validator_for(json.loads(HAR_SCHEMA.read_text()))
    errors = [e.message for e in validator.iter_errors(har)]
    assert errors == []
    broken = json.loads(json.dumps(har))
    del broken["log"]["entries"][0]["timings"]
    assert not validator.is_valid(broken)  # the schema does check entries
    parser = HarParser(har)
    assert parser.creator["name"] == "tocsin"
    entries = parser.pages[0].entries
    assert [e.request.method for e in entries] == ["GET", "GET", "POST", "GET"]
    assert entries[1].url.startswith("https://skim-cdn.example/s.js")
    assert har["log"]["entries"][1]["request"]["queryString"] == [
        {"name": "v", "value": "1"},
        {"name": "k", "value": "a b"},
    ]
    assert har["log"]["entries"][3]["_blocked"] == "10.0.0.1 is a private address"
    assert har["log"]["entries"][2]["request"]["postData"]["text"] == "cc=4111111111111111"


def test_timeline_has_no_script_and_escapes_a_hostile_title(seeded: Seeded, tmp_path: Path) -> None:
    archive = zipfile.ZipFile(make(seeded, tmp_path, [seeded.store.tickets["x1"]]))
    html = archive.read("timeline.html").decode()
    assert "<script" not in html.lower()
    assert "&lt;/title&gt;&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "Content-Security-Policy" in html
    readme = archive.read("README.txt").decode()
    assert "sha256sum -c SHA256SUMS" in readme


def test_unknown_ticket_and_campaign_are_one_line_errors(seeded: Seeded, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no incident or ticket 'TCS-NOPE'"):
        make(seeded, tmp_path, ["TCS-NOPE"])
    with pytest.raises(UsageError, match="no campaign named 'nope'"):
        make(seeded, tmp_path, [], campaign="nope")
    assert not list(tmp_path.iterdir())


def test_campaign_package_and_notice_ticket(seeded: Seeded, tmp_path: Path) -> None:
    archive = zipfile.ZipFile(make(seeded, tmp_path, [], campaign="skimmer-wave"))
    manifest = json.loads(archive.read("manifest.json"))
    assert len(manifest["incidents"]) == 3
    assert manifest["scope"] == {"campaign": "skimmer-wave"}
    notice_ticket = next(iter(seeded.store.notice_tickets.values()))
    (tmp_path / "package.zip").unlink()
    archive = zipfile.ZipFile(make(seeded, tmp_path, [notice_ticket]))
    assert len(json.loads(archive.read("manifest.json"))["incidents"]) == 4


def test_sha256sum_checks_the_unzipped_package(seeded: Seeded, tmp_path: Path) -> None:
    path = make(seeded, tmp_path, [seeded.store.tickets["x1"]])
    out = tmp_path / "unzipped"
    zipfile.ZipFile(path).extractall(out)
    done = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=out, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout


def test_the_bytes_a_yara_rule_matched_are_found_again(tmp_path: Path) -> None:
    from handoff.matches import MatchFinder
    from store.evidence import EvidenceStore
    from store.models import Evidence
    from tocsin.config import load

    store = EvidenceStore(tmp_path, 1024**2)
    dom = store.put(b"<html><script>var m = new CoinHive.Anonymous('k'); m.start();</script>")
    blob = Evidence(kind="dom", sha256=dom.sha256, size=dom.size, media_type="text/html")
    rules = ["yara.page.coinhive_style_miner", "behaviour.foreign_script"]
    found = MatchFinder(load(None, {})).find(store, rules, [(blob, "x/dom.html.txt")])
    assert len(found) == 1
    match = found[0]
    assert match["rule"] == "yara.page.coinhive_style_miner"
    assert match["file"] == "x/dom.html.txt"
    assert bytes.fromhex(match["bytes_hex"]) == b"CoinHive.Anonymous"
    assert match["bytes_text"] == "CoinHive.Anonymous"
    assert match["offset"] == store.get(dom.sha256).index(b"CoinHive")

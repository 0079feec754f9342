"""The evidence-package tests' store: the board tests' seeded store (incidents notified,
bounced, replied, resolved; a hostile page title), plus a browser visit's kept evidence
(request log, DOM, a payload zip) on one check."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

# The board tests seed the store these tests package; their helpers live beside them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "board"))

from board_support import HOSTILE_TITLE, NOW, SeededStore, seed_store

from store import evidence as evidence_store
from store.db import Database
from store.incidents import set_tlp
from store.models import Check, Evidence, Incident, IncidentUrl
from tocsin.config import Config, load

SECRET = "handoff-tests-secret-0123456789"
PAYLOAD = b"MZ TOCSIN-SANDBOX-SAMPLE inert test payload\x00\x01"
DOM = (
    "<html><head><title>" + HOSTILE_TITLE + "</title></head><body>"
    "<script src='https://skim-cdn.example/s.js'></script></body></html>"
)


@dataclass
class Seeded:
    store: SeededStore
    db_url: str
    folder: Path
    config: Config
    browser_check: int  # the check with a request log, DOM and payload


def request_log(url: str) -> dict[str, object]:
    """A request log as pipelines/evidence.py keeps it (browser.requests records)."""
    return {
        "url": url,
        "kind": "confirm",
        "route": "browser",
        "redirect_chain": [{"url": url, "status": 200}],
        "browser": {
            "title": HOSTILE_TITLE,
            "final_url": url,
            "requests": [
                {"url": url, "method": "GET", "type": "document", "main_frame": True,
                 "navigation": True, "phase": "load", "at": 0, "status": 200,
                 "mime": "text/html"},
                {"url": "https://skim-cdn.example/s.js?v=1&k=a%20b", "method": "GET",
                 "type": "script", "phase": "load", "at": 120.5, "status": 200,
                 "mime": "application/javascript", "initiator": url},
                {"url": "https://skim-cdn.example/c", "method": "POST", "type": "fetch",
                 "phase": "interaction", "at": 900, "post_data": "cc=4111111111111111",
                 "failure": "net::ERR_CONNECTION_REFUSED"},
                {"url": "http://10.0.0.1/admin", "method": "GET", "type": "image",
                 "at": 950, "blocked": "10.0.0.1 is a private address"},
            ],
        },
    }  # fmt: skip


def seed(db_url: str, folder: Path) -> Seeded:
    store = seed_store(Database(db_url), folder, SECRET)
    config = load(
        None,
        {
            "TOCSIN_DATABASE_URL": db_url,
            "TOCSIN_EVIDENCE_DIR": str(folder / "evidence"),
            "TOCSIN_PACKAGE_OPERATOR": "CERT-Test <duty@cert.example>",
        },
    )
    blobs = evidence_store.EvidenceStore(folder / "evidence", 10 * 1024**2)
    db = Database(db_url)
    with db.session() as s:
        incident = s.query(Incident).filter_by(public_id=store.tickets["x1"]).one()
        link = s.query(IncidentUrl).filter_by(incident_id=incident.id).first()
        check = s.query(Check).filter_by(url_id=link.url_id).first()
        log = json.dumps(request_log("http://xss.example/")).encode()
        zipped = blobs.put(evidence_store.zip_payload(PAYLOAD, "../../evil name.exe"))
        for kind, data, media, extra in (
            ("requests", log, "application/json", {}),
            ("dom", DOM.encode(), "text/html", {}),
        ):
            put = blobs.put(data)
            s.add(Evidence(check_id=check.id, kind=kind, sha256=put.sha256, size=put.size,
                           media_type=media, created_at=NOW, **extra))  # fmt: skip
        s.add(
            Evidence(
                check_id=check.id,
                kind="payload_zip",
                sha256=zipped.sha256,
                size=zipped.size,
                media_type="application/zip",
                note="the payload (zip, password: infected)",
                content_sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                created_at=NOW,
            )
        )
        set_tlp(s, incident, "red", NOW - timedelta(hours=1), actor="seed")
        browser_check = check.id
    db.dispose()
    return Seeded(store, db_url, folder, config, browser_check)

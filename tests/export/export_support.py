"""Helpers of the export tests: a seeded store and a loopback stand-in for MISP.

The store is written the way the pipeline writes it: sites, URLs and malicious
checks (with the IOCs the detectors record), incidents through the incident state
machine (``store.incidents``), a payload zipped into the evidence store. It carries
hostile text where attackers choose it: the campaign name, a page title, a URL.

MISP cannot run here. :class:`FakeMisp` answers the requests PyMISP makes the way
MISP's documented REST API does (``/servers/getVersion``, ``/users/view/me``,
``/attributes/describeTypes.json``, ``HEAD /events/view/<uuid>``, ``/events/add``,
``/events/edit/<uuid>``), checks each one (the ``Authorization`` header is the key,
JSON in and out, the event's shape) and keeps the events it was sent by uuid.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymisp

from store import evidence as evidence_store
from store.db import Database
from store.incidents import record_malicious, resolve, set_tlp
from store.models import Campaign, Check, Evidence, Site, Url
from tocsin.sandbox.core import to_toml

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# Markup, a terminal escape, a bidi override and quotes, where attackers choose the text.
CAMPAIGN = "<svg onload=alert('c')>wave\x1b[2J\u202e"
TITLE = "</title><script>alert('t')</script>\x1b]0;pwned\x07\u202e\"'&"
HOSTILE_URL = "http://shop-b.example/p\"><img src=x onerror=alert(1)>?q=it's\\here"
GREEN = "green-wave"
PAYLOAD = b"MZ\x90\x00 not really a program, a test payload"
PAYLOAD_SHA = sha256(PAYLOAD).hexdigest()


@dataclass
class Seeded:
    """What the tests expect back."""

    urls: dict[str, str] = field(default_factory=dict)  # host -> URL
    tickets: dict[str, str] = field(default_factory=dict)  # host -> ticket id


def seed(db: Database, evidence_dir: Path) -> Seeded:
    """Two campaigns: the hostile one (card-skimmer, three sites, one resolved and
    marked TLP:RED, a payload) and a green one (injected-script, one site)."""
    out = Seeded()
    store = evidence_store.EvidenceStore(evidence_dir, 10 * 1024**2)
    zipped = store.put(evidence_store.zip_payload(PAYLOAD, "update.exe"))
    with db.session() as s:

        def incident(
            host: str,
            campaign: str,
            *,
            family: str,
            url: str | None = None,
            iocs: dict[str, list[str]] | None = None,
            title: str | None = None,
            payload: bool = False,
            ip: str = "192.0.2.10",
        ) -> Any:
            site = Site(host=host, registered_domain=host, ips=[ip], first_seen=T0)
            site.enrich_state = "done"
            camp = s.query(Campaign).filter_by(name=campaign).one_or_none()
            if camp is None:
                camp = Campaign(name=campaign, family=family, first_seen=T0, last_seen=T0)
                camp.iocs = {}
                s.add(camp)
            s.add(site)
            s.flush()
            text = url or f"http://{host}/checkout/"
            row = Url(url=text, url_hash=sha256(text.encode()).hexdigest(), host=host)
            row.site_id, row.verdict, row.family, row.rules = site.id, "malicious", family, []
            row.first_seen = row.last_seen = T0
            s.add(row)
            s.flush()
            check = Check(url_id=row.id, kind="confirm", started_at=T0, finished_at=T0)
            check.route, check.verdict, check.family = "browser", "malicious", family
            check.confidence = 0.9
            check.rules, check.evidence_lines, check.redirect_chain = [f"tocsin.{family}"], [], []
            check.iocs = iocs or {}
            check.final_url = text
            check.meta = {"browser": {"title": title}} if title else {}
            if payload:
                check.payload_sha256 = PAYLOAD_SHA
            s.add(check)
            s.flush()
            if payload:
                s.add(
                    Evidence(
                        check_id=check.id,
                        kind="payload_zip",
                        sha256=zipped.sha256,
                        size=zipped.size,
                        media_type="application/zip",
                        content_sha256=PAYLOAD_SHA,
                        created_at=T0,
                    )
                )
            found = record_malicious(s, site=site, campaign=camp, url=row, check=check, now=T0)
            s.flush()
            out.urls[host], out.tickets[host] = text, found.public_id
            return found

        incident(
            "shop-a.example",
            CAMPAIGN,
            family="card-skimmer",
            title=TITLE,
            iocs={
                # The site's own host and URL are not attacker infrastructure.
                "domains": ["skim-cdn.example", "shop-a.example"],
                "urls": ["https://skim-cdn.example/s.js", "http://shop-a.example/checkout/"],
                "ips": ["203.0.113.7", "192.0.2.10"],
            },
        )
        incident(
            "shop-b.example",
            CAMPAIGN,
            family="card-skimmer",
            url=HOSTILE_URL,
            payload=True,
            ip="192.0.2.11",
            iocs={
                "domains": ["skim-cdn.example", "exfil.example"],
                "urls": ["https://exfil.example/c"],
                "sha256": [PAYLOAD_SHA],
            },
        )
        c = incident("shop-c.example", CAMPAIGN, family="card-skimmer", ip="192.0.2.12")
        resolve(s, c, T0 + timedelta(days=2), reason="clean at re-check", check_id=None)
        set_tlp(s, c, "red", T0, actor="seed")
        incident(
            "blog-g.example",
            GREEN,
            family="injected-script",
            iocs={"domains": ["loader.example"], "urls": ["https://loader.example/l.js"]},
        )
        set_tlp(s, s.query(Campaign).filter_by(name=GREEN).one(), "green", T0, actor="seed")
    db.dispose()
    return out


# -------------------------------------------------------------------------- a stand-in MISP

DESCRIBE_TYPES = json.loads(
    (Path(pymisp.__file__).parent / "data" / "describeTypes.json").read_text(encoding="utf-8")
)["result"]  # MISP's own answer, as PyMISP ships it
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class FakeMisp:
    """MISP's REST API on 127.0.0.1, as far as adding and editing events goes."""

    def __init__(self, key: str, tls: ssl.SSLContext | None = None) -> None:
        self.key = key
        self.events: dict[str, dict[str, Any]] = {}  # uuid -> event as stored
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.problems: list[str] = []  # requests that MISP's API would not take
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_HEAD(self) -> None:
                fake._handle(self, "HEAD")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeMisp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the API

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = request.path
        with self._lock:
            self.requests.append((method, path))
        if request.headers.get("Authorization") != self.key:
            message = (
                "Authentication failed. Please make sure you pass the API key of an API"
                " enabled user along in the Authorization header."
            )
            self._reply(request, 403, {"name": message, "message": message, "url": path})
            return
        if "application/json" not in (request.headers.get("Accept") or ""):
            self.problems.append(f"{method} {path}: Accept is not JSON")
        body: Any = None
        if method == "POST":
            if request.headers.get("Content-Type") != "application/json":
                self.problems.append(f"{method} {path}: Content-Type is not JSON")
            length = int(request.headers.get("Content-Length") or 0)
            body = json.loads(request.rfile.read(length) or b"null")
        if method == "GET" and path == "/servers/getVersion":
            self._reply(request, 200, {"version": "2.5.2", "pymisp_recommended_version": "2.5.2"})
        elif method == "GET" and path == "/users/view/me":
            self._reply(request, 200, self._me())
        elif method == "GET" and path == "/attributes/describeTypes.json":
            self._reply(request, 200, {"result": DESCRIBE_TYPES})
        elif method == "HEAD" and (m := re.fullmatch(r"/events/view/([0-9a-f-]{36})", path)):
            self._reply(request, 200 if m[1] in self.events else 404, None)
        elif method == "POST" and path == "/events/add":
            self._add(request, body)
        elif method == "POST" and (m := re.fullmatch(r"/events/edit/([0-9a-f-]{36}|\d+)", path)):
            self._edit(request, m[1], body)
        else:
            self.problems.append(f"{method} {path}: not an API path tocsin should call")
            self._reply(request, 404, {"name": "Not Found", "message": "Not Found", "url": path})

    def _add(self, request: BaseHTTPRequestHandler, body: Any) -> None:
        event = self._checked(body)
        if event is None:
            self._reply(request, 403, {"name": "Invalid event.", "errors": self.problems[-1:]})
        elif event["uuid"] in self.events:  # MISP refuses a second event with the uuid
            self._reply(request, 403, {"name": "Event already exists", "errors": ["duplicate"]})
        else:
            event["id"] = str(len(self.events) + 1)
            self.events[event["uuid"]] = event
            self._reply(request, 200, {"Event": event})

    def _edit(self, request: BaseHTTPRequestHandler, key: str, body: Any) -> None:
        event = self._checked(body)
        found = next((e for e in self.events.values() if key in (e["uuid"], e.get("id"))), None)
        if event is None or found is None:
            self._reply(request, 404, {"name": "Invalid event", "errors": ["Invalid event"]})
            return
        # MISP's edit matches attributes and objects by uuid: known ones are updated,
        # new ones added, none duplicated.
        for kind in ("Attribute", "Object", "Tag"):
            keyed = "name" if kind == "Tag" else "uuid"
            merged = {item[keyed]: item for item in found.get(kind, [])}
            merged.update({item[keyed]: item for item in event.get(kind, [])})
            found[kind] = list(merged.values())
        for name in ("info", "distribution", "analysis", "threat_level_id", "date"):
            found[name] = event.get(name, found.get(name))
        self._reply(request, 200, {"Event": found})

    def _checked(self, body: Any) -> dict[str, Any] | None:
        """The event of an add or edit body, or None (with the problem noted)."""
        event = body.get("Event", body) if isinstance(body, dict) else None
        problem = None
        if not isinstance(event, dict) or not UUID.match(str(event.get("uuid", ""))):
            problem = "no event uuid"
        elif not isinstance(event.get("info"), str) or not event["info"]:
            problem = "no info"
        elif str(event.get("distribution")) not in {"0", "1", "2", "3"}:
            problem = "distribution is not 0-3"
        elif _has_key(event, "timestamp"):
            problem = "a timestamp: MISP refuses an edit not newer than its copy"
        else:
            for attribute in event.get("Attribute", []) + [
                a for o in event.get("Object", []) for a in o.get("Attribute", [])
            ]:
                if attribute.get("type") not in DESCRIBE_TYPES["types"]:
                    problem = f"unknown attribute type {attribute.get('type')!r}"
                elif attribute.get("category") not in DESCRIBE_TYPES["categories"]:
                    problem = f"unknown category {attribute.get('category')!r}"
                elif not UUID.match(str(attribute.get("uuid", ""))):
                    problem = "an attribute without a uuid"
                elif attribute["type"] not in DESCRIBE_TYPES["category_type_mappings"].get(
                    attribute["category"], []
                ):
                    problem = f"{attribute['type']} is not allowed in {attribute['category']}"
            for obj in event.get("Object", []):
                if obj.get("name") != "file" or not UUID.match(str(obj.get("uuid", ""))):
                    problem = "an object that is not a file object with a uuid"
        if problem:
            self.problems.append(problem)
            return None
        return event

    def _me(self) -> dict[str, Any]:
        return {
            "User": {"id": "1", "email": "tocsin@misp.example", "org_id": "1"},
            "Role": {"id": "3", "name": "User", "perm_add": True, "perm_tagger": True},
            "UserSetting": [],
            "Organisation": {"id": "1", "name": "CSIRT"},
        }

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def export_config(path: Path, db_url: str, evidence: Path, **misp: Any) -> Path:
    """A config file for the seeded store, with a ``[misp]`` table when given."""
    tables: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        "evidence": {"dir": str(evidence)},
    }
    if misp:
        tables["misp"] = misp
    path.write_text(to_toml(tables), encoding="utf-8")
    return path

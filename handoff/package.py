"""The evidence package: one zip an investigator opens without tocsin.

Layout (docs/handoff.md): ``manifest.json`` (sha256 and size of every file,
who made it, when, with which tocsin, each incident's TLP), ``SHA256SUMS``
(the same hashes for ``sha256sum -c``), ``manifest.json.tsr`` (an RFC 3161
token over the manifest, when ``package.tsa_url`` is set), ``README.txt``,
``timeline.html``, and per incident ``incidents/<ticket>/``: the incident,
its timeline from the event log, every check (record, HAR, screenshot, DOM),
its payloads (the stored AES zips, password ``infected``) and every notice
as sent with its delivery, bounces and replies.

Blobs are streamed from the evidence store into the zip in chunks and hashed
as they are written; incidents are read one at a time, so memory stays
bounded whatever the campaign's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.har import request_log_har
from handoff.load import CHUNK_SIZE, Chunk, load_chunk
from handoff.matches import MatchFinder
from handoff.render import render
from handoff.timestamp import request_token
from store.db import Database
from store.evidence import EvidenceStore, safe_member_name
from store.models import (
    Campaign,
    Check,
    Evidence,
    Incident,
    Notice,
    NoticeItem,
    Site,
)
from store.queries import effective_tlp, tlp_label
from tocsin import __version__
from tocsin.config import Config
from tocsin.errors import UsageError

FORMAT = "tocsin-evidence-package/1"
MANIFEST = "manifest.json"
TOKEN = "manifest.json.tsr"  # noqa: S105 - a file name, not a secret
SUMS = "SHA256SUMS"
CHUNK = 1024 * 1024
TIMELINE_ROWS = 200  # events per incident shown in timeline.html (all are in timeline.json)

# Evidence kinds and the file names they get: nothing a page sent names a file, and
# the attacker's HTML is never given a name a double-click renders.
_SUFFIX = {
    "screenshot": "screenshot.png",
    "dom": "dom.html.txt",
    "served_html": "served.html.txt",
    "requests": "requests.json",
}
_STORED = (".png", ".zip")  # already compressed


@dataclass
class Summary:
    """What was packaged, for the command's last line and the tests."""

    path: Path | None
    incidents: int
    files: int
    manifest_sha256: str
    timestamped: bool
    size: int = 0


@dataclass
class _Writer:
    """Adds members to the zip and keeps each one's hash and size for the manifest."""

    archive: zipfile.ZipFile
    made: datetime
    files: list[dict[str, Any]] = field(default_factory=list)

    def _info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, self.made.timetuple()[:6])
        info.compress_type = zipfile.ZIP_STORED if path.endswith(_STORED) else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def add(self, path: str, chunks: Iterable[bytes], listed: bool = True, **extra: Any) -> None:
        digest, size = hashlib.sha256(), 0
        with self.archive.open(self._info(path), "w", force_zip64=True) as member:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                member.write(chunk)
        if listed:
            self.files.append({"path": path, "sha256": digest.hexdigest(), "size": size, **extra})

    def add_bytes(self, path: str, data: bytes, **extra: Any) -> None:
        self.add(path, [data], **extra)

    def add_json(self, path: str, value: Any) -> None:
        self.add_bytes(path, _json(value))

    def add_blob(self, path: str, source: Path, **extra: Any) -> None:
        self.add(path, _read_chunks(source), **extra)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _json(value: Any, indent: int | None = None) -> bytes:
    """UTF-8 JSON; compact (the C encoder) unless ``indent``: per-incident files are many."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=_default)
    return (text + "\n").encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class Spool:
    """Per-incident summaries kept in a temporary file, one JSON line each, and read
    back (as often as a template loops over them) one at a time."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def append(self, row: dict[str, Any]) -> None:
        self._file.write(_json(row))
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)
        self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- selection


def select_incidents(session: Session, idents: list[str], campaign: str | None) -> list[int]:
    """Incident ids by ticket (``TCS-...``, an incident's or a notice's) or number, or every
    incident of a campaign by name; an unknown one is a usage error naming it."""
    if campaign is not None:
        found = session.scalars(select(Campaign.id).where(Campaign.name == campaign)).first()
        if found is None:
            raise UsageError(f"package: no campaign named {campaign!r}")
        ids = list(
            session.scalars(
                select(Incident.id).where(Incident.campaign_id == found).order_by(Incident.id)
            )
        )
        if not ids:
            raise UsageError(f"package: campaign {campaign!r} has no incidents")
        return ids
    ids: list[int] = []
    for ident in idents:
        text = ident.strip()
        found_ids: list[int] = []
        if text.isdigit() and len(text) < 12:
            found_ids = [int(text)] if session.get(Incident, int(text)) is not None else []
        else:
            own = session.scalars(select(Incident.id).where(Incident.public_id == text.upper()))
            found_ids = list(own)
            if not found_ids:  # a notice's ticket: the incidents it carried
                found_ids = list(
                    session.scalars(
                        select(NoticeItem.incident_id)
                        .join(Notice, Notice.id == NoticeItem.notice_id)
                        .where(Notice.ticket == text.upper())
                        .distinct()
                    )
                )
        if not found_ids:
            raise UsageError(f"package: no incident or ticket {ident!r}")
        ids += [i for i in found_ids if i not in ids]
    if not ids:
        raise UsageError("package: name incidents or tickets, or --campaign NAME")
    return ids


# --------------------------------------------------------------------------- one incident


def _incident_record(
    chunk: Chunk, incident: Incident, campaign: Campaign, site: Site, tlp: str
) -> dict[str, Any]:
    urls = chunk.urls.get(incident.id, [])
    recipients = chunk.ladder.get(incident.id, [])
    return {
        "ticket": incident.public_id,
        "tlp": tlp,
        "state": incident.state,
        "level": incident.level,
        "family": incident.family,
        "families": incident.families or [],
        "first_seen": incident.first_seen,
        "last_confirmed": incident.last_confirmed,
        "first_notified": incident.first_notified,
        "level_reached_at": incident.level_reached_at,
        "resolved_at": incident.resolved_at,
        "reopen_count": incident.reopen_count,
        "campaign": {"name": campaign.name, "family": campaign.family, "iocs": campaign.iocs},
        "site": {
            "host": site.host,
            "registered_domain": site.registered_domain,
            "ips": site.ips,
            "asn": site.asn,
            "as_name": site.as_name,
            "prefix": site.prefix,
            "country": site.country,
            "network_name": site.network_name,
            "registrar": site.registrar,
            "cdn": site.cdn,
        },
        "urls": [{"url": u.url, "verdict": u.verdict, "first_seen": u.first_seen} for u in urls],
        "ladder": [
            {
                "level": r.level,
                "role": r.role,
                "email": c.email,
                "source": c.source,
                "reason": r.reason,
                "language": r.language,
            }
            for r, c in recipients
        ],
    }


class PackageBuilder:
    """Writes one package; one per call of :func:`build_package`."""

    def __init__(self, config: Config, writer: _Writer) -> None:
        self.config = config
        self.writer = writer
        self.store = EvidenceStore.from_config(config)
        self.matches = MatchFinder(config)
        self.timeline = Spool()  # per incident, for timeline.html and README.txt
        self.incidents: list[dict[str, Any]] = []  # per incident, for the manifest
        self.written: set[str] = set()  # a payload shared by two checks goes in once

    def chunk(self, chunk: Chunk) -> None:
        for incident, campaign, site in chunk.incidents:
            self.incident(chunk, incident, campaign, site)

    def incident(self, chunk: Chunk, incident: Incident, campaign: Campaign, site: Site) -> None:
        label = tlp_label(effective_tlp(incident, campaign, self.config.board.default_tlp))
        folder = f"incidents/{safe_member_name(incident.public_id)}"
        record = _incident_record(chunk, incident, campaign, site, label)
        self.writer.add_json(f"{folder}/incident.json", record)
        events = chunk.events.get(incident.id, [])
        timeline = [{"at": e.at, "kind": e.kind, "actor": e.actor, "data": e.data} for e in events]
        self.writer.add_json(f"{folder}/timeline.json", timeline)
        checks = self._checks(chunk, incident, folder)
        notices = self._notices(chunk, incident, folder)
        self.incidents.append(
            {
                "ticket": incident.public_id,
                "tlp": label,
                "host": site.host,
                "campaign": campaign.name,
                "state": incident.state,
                "folder": folder,
            }
        )
        self.timeline.append(
            {
                "ticket": incident.public_id,
                "tlp": label,
                "host": site.host,
                "campaign": campaign.name,
                "state": incident.state,
                "level": incident.level,
                "family": incident.family,
                "folder": folder,
                "checks": checks,
                "notices": notices,
                "events": timeline[:TIMELINE_ROWS],
                "more_events": max(0, len(timeline) - TIMELINE_ROWS),
            }
        )

    def _checks(self, chunk: Chunk, incident: Incident, folder: str) -> list[dict[str, Any]]:
        shown = []
        for check, url in chunk.checks.get(incident.id, []):
            base = f"{folder}/checks/{check.id}-{safe_member_name(check.kind)}"
            blobs = chunk.evidence.get(check.id, [])
            files: list[dict[str, Any]] = []
            placed: list[tuple[Evidence, str]] = []
            for blob in blobs:
                path = self._blob_path(base, folder, blob)
                source = self.store.path_for(blob.sha256)
                entry = {
                    "path": path,
                    "kind": blob.kind,
                    "note": blob.note,
                    "evidence_sha256": blob.sha256,
                    "content_sha256": blob.content_sha256,
                }
                if not source.is_file():
                    files.append({**entry, "missing": "not in the evidence store"})
                    continue
                if path not in self.written:
                    self.writer.add_blob(path, source, evidence_sha256=blob.sha256)
                    self.written.add(path)
                files.append(entry)
                placed.append((blob, path))
                if blob.kind == "requests":
                    har = self._har(source, check)
                    if har is not None:
                        self.writer.add_json(f"{base}/requests.har", har)
                        files.append({"path": f"{base}/requests.har", "kind": "har"})
            browser = (check.meta or {}).get("browser") or {}
            data = {
                "id": check.id,
                "kind": check.kind,
                "url": url,
                "final_url": check.final_url,
                "started_at": check.started_at,
                "finished_at": check.finished_at,
                "route": check.route,
                "route_reason": check.route_reason,
                "verdict": check.verdict,
                "family": check.family,
                "confidence": check.confidence,
                "http_status": check.http_status,
                "content_type": check.content_type,
                "title": browser.get("title"),
                "rules": check.rules or [],
                "matches": self.matches.find(self.store, check.rules or [], placed),
                "evidence_lines": check.evidence_lines or [],
                "iocs": check.iocs or {},
                "redirect_chain": check.redirect_chain or [],
                "payload_sha256": check.payload_sha256,
                "error": check.error,
                "meta": check.meta or {},
                "files": files,
            }
            self.writer.add_json(f"{base}/check.json", data)
            shown.append(
                {
                    "id": check.id,
                    "kind": check.kind,
                    "at": check.started_at,
                    "url": url,
                    "final_url": check.final_url,
                    "verdict": check.verdict,
                    "family": check.family,
                    "title": browser.get("title"),
                    "rules": check.rules or [],
                    "evidence_lines": (check.evidence_lines or [])[:10],
                    "redirect_chain": [str(h.get("url", "")) for h in check.redirect_chain or []][
                        :20
                    ],
                    "folder": base,
                }
            )
        return shown

    def _blob_path(self, base: str, folder: str, blob: Evidence) -> str:
        if blob.kind == "payload_zip":
            # One file per payload per incident, named by the payload's own hash.
            return f"{folder}/payloads/{blob.content_sha256 or blob.sha256}.zip"
        if blob.kind.startswith("variant_"):
            return f"{base}/{safe_member_name(blob.kind)}.html.txt"
        return f"{base}/{_SUFFIX.get(blob.kind, safe_member_name(blob.kind) + '.bin')}"

    def _har(self, source: Path, check: Check) -> dict[str, Any] | None:
        try:
            log = json.loads(source.read_bytes())
        except (OSError, ValueError):
            return None
        return request_log_har(log, check.started_at) if isinstance(log, dict) else None

    def _notices(self, chunk: Chunk, incident: Incident, folder: str) -> list[dict[str, Any]]:
        deliveries, shown = [], []
        for notice in chunk.notices.get(incident.id, []):
            name = safe_member_name(notice.ticket or f"notice-{notice.id}")
            path = f"{folder}/notices/{name}.eml"
            self.writer.add_bytes(path, notice.message)
            journal = chunk.journal.get(notice.message_id)
            inbox = chunk.inbox.get(notice.id, [])
            answers = [
                {
                    "kind": m.kind,
                    "received_at": m.received_at,
                    "sender": m.sender,
                    "subject": m.subject,
                    "message_id": m.message_id,
                    "data": m.data,
                }
                for m in inbox
            ]
            delivery = {
                "file": path,
                "ticket": notice.ticket,
                "message_id": notice.message_id,
                "recipient": notice.recipient,
                "role": notice.role,
                "kind": notice.kind,
                "level": notice.level,
                "language": notice.language,
                "subject": notice.subject,
                "state": notice.state,
                "attempts": notice.attempts,
                "last_error": notice.last_error,
                "created_at": notice.created_at,
                "sent_at": notice.sent_at,
                "relay": {"state": journal.state, "at": journal.at} if journal else None,
                "bounces": [a for a in answers if a["kind"] == "dsn"],
                "replies": [a for a in answers if a["kind"] != "dsn"],
            }
            deliveries.append(delivery)
            shown.append(delivery)
        if deliveries:
            self.writer.add_json(f"{folder}/notices/deliveries.json", deliveries)
        return shown


# --------------------------------------------------------------------------- the package


def build_package(
    db: Database,
    config: Config,
    incident_ids: list[int],
    out: IO[bytes],
    now: datetime,
    scope: dict[str, Any],
) -> Summary:
    """Write the package for ``incident_ids`` to ``out`` (a file opened for writing)."""
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        writer = _Writer(archive, now)
        builder = PackageBuilder(config, writer)
        for start in range(0, len(incident_ids), CHUNK_SIZE):
            # A few incidents at a time: memory stays bounded, queries stay few.
            with db.session() as session:
                builder.chunk(load_chunk(session, incident_ids[start : start + CHUNK_SIZE]))
        context = {
            "made": now,
            "version": __version__,
            "operator": config.package.operator,
            "scope": scope,
            "incidents": builder.timeline,
            "tsa_url": config.package.tsa_url,
        }
        writer.add("README.txt", render("README.txt.j2", context))
        writer.add("timeline.html", render("timeline.html.j2", context))
        builder.timeline.close()
        manifest = {
            "format": FORMAT,
            "tocsin_version": __version__,
            "created": now,
            "operator": config.package.operator or None,
            "scope": scope,
            "timestamp": {"tsa_url": config.package.tsa_url, "token": TOKEN}
            if config.package.tsa_url
            else None,
            "incidents": builder.incidents,
            "files": writer.files,
        }
        data = _json(manifest, indent=1)
        token = request_token(config.package, data) if config.package.tsa_url else None
        sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in writer.files).encode()
        writer.add(SUMS, [sums], listed=False)
        writer.add(MANIFEST, [data], listed=False)
        if token is not None:
            writer.add(TOKEN, [token], listed=False)
    return Summary(
        path=None,
        incidents=len(builder.incidents),
        files=len(writer.files),
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        timestamped=token is not None,
    )


def write_package(
    db: Database,
    config: Config,
    incident_ids: list[int],
    path: Path,
    now: datetime,
    scope: dict[str, Any],
) -> Summary:
    """:func:`build_package` into ``path``, through ``path.part`` so that a package that
    failed half-way is never left under its final name."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as fh:
            summary = build_package(db, config, incident_ids, fh, now, scope)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    summary.path = path
    summary.size = path.stat().st_size
    return summary

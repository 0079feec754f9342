"""Ingest test helpers: the feed samples, a config for a store, a feed server on loopback."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ingest import IngestReport, ingest_sources
from store.db import Database
from store.models import FeedSubmission, Reject, Url
from tocsin.config import Config

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"  # see tests/data/README.md
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_config(db_url: str, **tables: dict[str, Any]) -> Config:
    """A validated Config for ``db_url`` with extra tables, as a TOML file would give."""
    return Config.model_validate({"database": {"url": db_url}, **tables})


def ingest(
    db: Database, refs: list[str | Path], config: Config | None = None, **options: Any
) -> IngestReport:
    """Run the ingest stage in-process at the fixed clock NOW."""
    config = config or make_config(db.url)
    return ingest_sources(config, db, NOW, [str(r) for r in refs], **options)


def submissions(db: Database) -> list[FeedSubmission]:
    with db.session() as session:
        return list(session.scalars(select(FeedSubmission).order_by(FeedSubmission.id)))


def rejects(db: Database) -> list[Reject]:
    with db.session() as session:
        return list(session.scalars(select(Reject).order_by(Reject.id)))


def urls(db: Database) -> list[Url]:
    with db.session() as session:
        return list(session.scalars(select(Url).order_by(Url.id)))


def assert_accounted(report: IngestReport) -> None:
    """The invariant: every record is new, duplicate or rejected."""
    for source in report.sources:
        assert source.new + source.duplicate + source.rejected == source.records, source


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    cut_short: bool = False  # declare twice the body's length, then hang up


class FeedServer:
    """An HTTP server on 127.0.0.1 giving each path its :class:`Reply` (404 if none)."""

    def __init__(self) -> None:
        # path -> the replies still to give, the last one for ever after
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                replies = server.routes.get(self.path, [Reply(404, b"not found")])
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                declared = len(reply.body) * (2 if reply.cut_short else 1)
                self.send_header("Content-Length", str(declared))
                self.end_headers()
                self.wfile.write(reply.body)
                self.close_connection = reply.cut_short

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> str:
        return self.serve_in_turn(path, Reply(status, body, headers))

    def serve_in_turn(self, path: str, *replies: Reply) -> str:
        """Give ``replies`` to successive requests, then the last one for good."""
        self.routes[path] = list(replies)
        return self.url(path)

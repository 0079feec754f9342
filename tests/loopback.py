"""A small HTTP server on 127.0.0.1 for tests of what tocsin downloads (feeds, rule packs).

It gives each path its :class:`Reply`; the guard lets tocsin reach it only with
``network.allow_private`` (or ``allow_cidrs`` naming 127.0.0.0/8).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


def serving() -> Iterator[FeedServer]:
    """Run a :class:`FeedServer` for the duration of a fixture."""
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(5)

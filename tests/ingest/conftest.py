"""Ingest fixtures: a feed server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ingest_support import FeedServer


@pytest.fixture(scope="module")
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(5)

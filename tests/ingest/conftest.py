"""Ingest fixtures: a feed server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loopback import FeedServer, serving


@pytest.fixture(scope="module")
def feed_server() -> Iterator[FeedServer]:
    yield from serving()

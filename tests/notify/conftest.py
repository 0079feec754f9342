"""Fixtures of the notifier tests (the helpers live in ``notify_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_helpers import ImapServer, SandboxMail, ScriptedCrawler, Seed, make_app

from store.db import Database
from tocsin.app import App


@pytest.fixture
def seed(db: Database) -> Seed:
    return Seed(db)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    application = make_app(db_url, tmp_path)
    yield application
    application.db.dispose()


@pytest.fixture
def smtp(sandbox) -> SandboxMail:
    """The sandbox's mail relay; the sandbox fixture empties it after each test."""
    return SandboxMail(sandbox)


@pytest.fixture
def crawler() -> ScriptedCrawler:
    return ScriptedCrawler()


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    server = ImapServer()
    yield server
    server.stop()

"""Fixtures of the board tests: the real board (``tocsin board`` in a subprocess), a
seeded store, a module-wide store on both engines, and a Chromium driven by Playwright.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from board_support import BoardProcess, SeededStore, seed_store

from crawler.settings import CHROMIUM_FLAGS
from store.db import Database
from tocsin.sandbox.core import to_toml

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

CHROMIUM = Path("/usr/bin/chromium")
SECRET = "board-tests-secret-0123456789"


@pytest.fixture(scope="module")
def seeded(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, make_cli: type
) -> Iterator[tuple[SeededStore, BoardProcess, Any]]:
    """A seeded store (see board_support.seed_store) and the board serving it."""
    folder = tmp_path_factory.mktemp("board")
    config = folder / "tocsin.toml"
    config.write_text(
        to_toml(
            {
                "database": {"url": module_db_url},
                "evidence": {"dir": str(folder / "evidence")},
                "board": {"secret": SECRET, "max_failures": 5},
            }
        ),
        encoding="utf-8",
    )
    cli = make_cli(folder, config)
    store = seed_store(Database(module_db_url), folder, SECRET)
    with BoardProcess(cli) as board:
        yield store, board, cli


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium (Debian's) per module: Playwright's sync API keeps an event
    loop running on this thread while it is open, which later asyncio users cannot share."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("Chromium is required in CI (make setup installs it)")
        pytest.skip("no system Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, tmp_path: Path) -> Iterator[object]:
    """A fresh browser context and page that records dialogs and console errors."""
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.dialogs = []
    page.console_errors = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.shots = tmp_path / "screenshots"
    page.shots.mkdir()
    yield page
    context.close()

"""Fixtures of the export tests: a seeded store on both engines and the CLI reading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from export_support import Seeded, export_config, seed

from store import migrate
from store.db import Database


@pytest.fixture
def seeded(db_url: str, tmp_path: Path, make_cli: type) -> tuple[Seeded, Any]:
    """The seeded store (export_support.seed) and the CLI on it: SQLite, then PostgreSQL."""
    evidence = tmp_path / "evidence"
    out = seed(Database(db_url), evidence)
    config = export_config(tmp_path / "tocsin.toml", db_url, evidence)
    return out, make_cli(tmp_path, config)


@pytest.fixture
def sqlite_seeded(tmp_path: Path, make_cli: type) -> tuple[Seeded, Any, Path]:
    """The seeded store on SQLite only (for the MISP push: the reading is tested on both)."""
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    migrate.upgrade(Database(url))
    evidence = tmp_path / "evidence"
    out = seed(Database(url), evidence)
    return out, make_cli, url

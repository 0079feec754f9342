"""Fixtures of the evidence-package tests (see handoff_support.seed), on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from handoff_support import Seeded, seed


@pytest.fixture(scope="module")
def seeded(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The seeded store, once per module and engine."""
    return seed(module_db_url, tmp_path_factory.mktemp("handoff"))

"""The run context every command receives: configuration, clock and database.

Built once by the command line from the global options; stages take what they
need from it instead of reading globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from store.db import Database
from tocsin.clock import Clock
from tocsin.config import Config, load


@dataclass
class App:
    """Configuration is loaded on first use, so ``--help`` works even with a broken file."""

    config_path: Path | None = None
    clock: Clock = field(default_factory=Clock)
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    preset: Config | None = None

    @cached_property
    def config(self) -> Config:
        return self.preset if self.preset is not None else load(self.config_path)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    @cached_property
    def db(self) -> Database:
        """The store, which must exist at the current schema: only ``tocsin init`` creates
        or migrates one, so a mistyped SQLite path is an error, not a new empty store
        (and its folders) that a cron job then fills while the real one waits."""
        from store import migrate

        database = Database(self.config.database.url, create=False)
        migrate.ensure_ready(database)
        return database

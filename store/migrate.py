"""Alembic, driven from code: ``tocsin init`` and the start-up schema check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import DatabaseError

from store.db import Database
from store.dburl import mask_password
from tocsin.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config(db: Database) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def head_revision(db: Database) -> str:
    return ScriptDirectory.from_config(_alembic_config(db)).get_current_head() or ""


def current_revision(db: Database) -> str | None:
    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DatabaseError as exc:  # also "file is not a database" (not an OperationalError)
        problem = " ".join(mask_password(str(exc.orig), db.url).split())
        raise StoreError(f"cannot open the database {db.shown_url}: {problem}") from None


def upgrade(db: Database) -> tuple[str | None, str]:
    """Create or migrate the schema to head; safe to repeat. Returns (before, after)."""
    before = current_revision(db)
    cfg = _alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(db)


def ensure_ready(db: Database) -> bool:
    """Check the schema is at head; create it on a brand-new database.

    Returns True when it had to create the schema. An existing database at an
    older revision is not migrated behind the operator's back: that is
    ``tocsin init``'s job.
    """
    current = current_revision(db)
    head = head_revision(db)
    if current == head:
        return False
    if current is None:
        with db.engine.connect() as conn:
            if inspect(conn).get_table_names():
                raise StoreError(
                    f"{db.shown_url} has tables but no tocsin schema version; refusing to touch it"
                )
        upgrade(db)
        return True
    raise StoreError(f"database is at revision {current}, expected {head}: run `tocsin init`")

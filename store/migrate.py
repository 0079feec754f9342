"""Alembic, driven from code: ``tocsin init`` and the start-up schema check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from store.db import Database, driver_problem
from tocsin.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_owns(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    """Alembic's ``include_name``: every object but procrastinate's job tables, which
    ``tocsin init`` installs with procrastinate's own schema manager (docs/scale.md), so
    autogenerate and the models check never propose to drop them."""
    table = parent_names.get("table_name") or (name if type_ == "table" else None)
    return not (table or "").startswith("procrastinate_")


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
        problem = driver_problem(exc, db.url)
        raise StoreError(f"cannot open the database {db.shown_url}: {problem}") from None


def upgrade(db: Database) -> tuple[str | None, str]:
    """Create or migrate the schema to head; safe to repeat. Returns (before, after)."""
    before = current_revision(db)
    cfg = _alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(db)


def ensure_ready(db: Database) -> None:
    """Check the schema is at head, for every command but ``tocsin init``.

    Nothing is created or migrated behind the operator's back: a database without
    tocsin's schema (a new PostgreSQL database, an empty file) and one at an older
    revision are both ``tocsin init``'s job, said in one line.
    """
    current = current_revision(db)
    head = head_revision(db)
    if current == head:
        return
    if current is None:
        with db.engine.connect() as conn:
            if inspect(conn).get_table_names():
                raise StoreError(
                    f"{db.shown_url} has tables but no tocsin schema version; refusing to touch it"
                )
        raise StoreError(
            _unusable_schema(db) or f"no tocsin store in {db.shown_url}: run `tocsin init` first"
        )
    raise StoreError(f"database is at revision {current}, expected {head}: run `tocsin init`")


def _unusable_schema(db: Database) -> str | None:
    """Why a PostgreSQL role sees no tables: no schema of its search_path that it may
    use. Said as such, or a role without rights would be told to run ``init``."""
    if db.dialect != "postgresql":
        return None
    with db.engine.connect() as conn:
        user, path, schema = conn.execute(
            text("SELECT current_user, current_setting('search_path'), current_schema()")
        ).one()
    if schema is not None:
        return None
    return (
        f"the store {db.shown_url} refused: the role {user} may use no schema of its"
        f" search_path ({path}): grant it USAGE on the schema and rights on its tables"
    )

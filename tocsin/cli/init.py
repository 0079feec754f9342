"""`tocsin init`: create or migrate the database; safe to repeat."""

from __future__ import annotations

import click

from store import migrate
from store.db import Database
from tocsin import jobs
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.ui import out


@click.command(name="init")
@pass_app
def command(app: App) -> int:
    """Create or migrate the database; safe to repeat."""
    db = Database(app.config.database.url)
    before, after = migrate.upgrade(db)
    if before == after:
        out.print(f"database {db.shown_url} is up to date (revision {after})")
    else:
        out.print(f"database {db.shown_url} migrated from {before or 'empty'} to revision {after}")
    if db.dialect == "postgresql" and jobs.install_schema(db, app.config):
        out.print("installed the job queue's tables (procrastinate)")
    return 0

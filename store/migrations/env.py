"""Alembic environment: uses the connection handed over by store.migrate, or the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from store.migrate import alembic_owns
from store.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        include_name=alembic_owns,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)


run()

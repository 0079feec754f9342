"""PostgreSQL: compress stored notices with lz4 instead of pglz.

Every notice keeps its whole RFC 5322 message (with the CSV and the X-ARF
reports), tens of kilobytes each, and PostgreSQL compresses such values as it
writes them. With its default, pglz, that compression was the largest server
cost of ``tocsin notify`` (20,000 incidents: 21.4 s, with lz4 16.1 s). lz4 needs
PostgreSQL 14 built with it; elsewhere the column keeps pglz. Rows already
written keep their compression. SQLite: nothing to do.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.server_version_info < (14,):
        return
    try:
        with bind.begin_nested():
            op.execute(f"ALTER TABLE notices ALTER COLUMN message SET COMPRESSION {method}")
    except sa.exc.DBAPIError:  # a server built without lz4
        pass


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")

"""A lease per URL: who is checking it now, for which job, and until when.

Two ``tocsin crawl`` runs (or ``tocsin worker`` processes on other machines) on
one store used to check every due URL twice: the spider read what was due
without claiming it. A claim now writes ``lease_token`` (the crawl that holds
the URL), ``lease_job`` (the queued job it works for, if any: a retried job
takes back its own leases) and ``lease_expires_at`` (the backstop when a
worker dies) on the URL row itself, so that PostgreSQL's row lock and its
re-check of a locked row cover the lease (issue 14).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("urls") as batch:
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_job", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", store.types.UTCDateTime(), nullable=True))
    op.create_index("ix_urls_lease_token", "urls", ["lease_token"])


def downgrade() -> None:
    op.drop_index("ix_urls_lease_token", table_name="urls")
    with op.batch_alter_table("urls") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_job")
        batch.drop_column("lease_token")

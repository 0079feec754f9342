"""Scheduled jobs of ``tocsin serve``: a lease per job and its last run (issue 14).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=128), primary_key=True),
        sa.Column("token", sa.String(length=32), nullable=True),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("expires_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_started_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_finished_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("last_duration", sa.Float(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("job_leases")

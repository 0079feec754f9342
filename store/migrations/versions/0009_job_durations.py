"""Every scheduled job run's duration, for the /metrics histogram (issue 14).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_leases") as batch:
        batch.add_column(sa.Column("runs", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("duration_sum", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("duration_buckets", store.types.JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_leases") as batch:
        batch.drop_column("duration_buckets")
        batch.drop_column("duration_sum")
        batch.drop_column("runs")

"""One incident per site: the families an incident has gathered.

An incident's ``family`` stays the first (primary) family, as the public JSON
shapes have it; ``families`` lists every family its checks found since, in the
order they were found. Existing incidents start with their one family.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("families", store.types.JSONType, nullable=True))
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.Integer()),
        sa.column("family", sa.String()),
        sa.column("families", store.types.JSONType),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(incidents.c.id, incidents.c.family)).all()
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        bind.execute(
            incidents.update()
            .where(incidents.c.id == sa.bindparam("incident_id"))
            .values(families=sa.bindparam("value")),
            [{"incident_id": i, "value": [f] if f else []} for i, f in chunk],
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("families")

"""The SMTP relay journal moves into the store.

``relay_journal`` holds, per Message-ID, what the relay was handed: ``begin``
(committed in its own transaction before DATA), ``accepted`` (after the relay's
250) or ``rejected``. It replaces the file ``notify-journal.log``, which was
resolved against the working directory: a rerun from another folder after a
crash found no journal and sent again what the relay already had (issue 12).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_journal",
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_relay_journal")),
    )


def downgrade() -> None:
    op.drop_table("relay_journal")

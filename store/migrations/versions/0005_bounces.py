"""Bounces per contact, and follow-ups that a bounce does not owe.

``contacts.bounce_status`` (``hard``: a 5xx or a failed DSN, never written to
again; ``soft``: a 4xx or a delayed DSN, still written to) and
``bounce_reason`` (the relay's reply or the DSN's status and diagnostic) say
per contact what ``bounced`` alone did not: how and why. ``bounced_at``
already existed; a soft bounce sets it too.

``incidents.followup_level``: the level up to which contacts already told owe
a follow-up. NULL means the incident's level (every escalation by grace). A
bounce moves the incident on to the next level for the bounced role but keeps
this at the level the others were reached at, so they get no "still
compromised" follow-up seconds after their first notice.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounce_status", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("bounce_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("followup_level", sa.Integer(), nullable=True))
    # Contacts bounced before this revision were bounced by a 5xx or a failed DSN.
    op.execute("UPDATE contacts SET bounce_status = 'hard' WHERE bounced")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("followup_level")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("bounce_reason")
        batch_op.drop_column("bounce_status")

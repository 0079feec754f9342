"""The board: analysts' log-ins and sessions, API tokens, submissions, TLP labels,
the failures its rate limit counts,
and the indexes the board's lists need at a million URLs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_users")),
        sa.UniqueConstraint("name", name=op.f("uq_board_users_name")),
    )
    op.create_table(
        "board_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["board_users.id"], name=op.f("fk_board_sessions_user_id_board_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_board_sessions_session_hash")),
    )
    with op.batch_alter_table("board_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_board_sessions_expires_at"), ["expires_at"])
        batch_op.create_index(batch_op.f("ix_board_sessions_user_id"), ["user_id"])

    op.create_table(
        "board_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_board_failures")),
    )
    with op.batch_alter_table("board_failures", schema=None) as batch_op:
        batch_op.create_index("ix_board_failures_address", ["address", "at"])
        batch_op.create_index(batch_op.f("ix_board_failures_at"), ["at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", store.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_name"), ["name"])

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("submitter", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["ingest_runs.id"], name=op.f("fk_submissions_run_id_ingest_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("public_id", name=op.f("uq_submissions_public_id")),
        sa.UniqueConstraint("run_id", name=op.f("uq_submissions_run_id")),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index("ix_submissions_submitter", ["submitter", "id"])

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tlp", sa.String(length=16), nullable=True))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tlp", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_incidents_campaign_seen", ["campaign_id", "first_seen", "id"], unique=False
        )
    with op.batch_alter_table("urls", schema=None) as batch_op:
        batch_op.create_index("ix_urls_verdict_id", ["verdict", "id"])
        batch_op.create_index("ix_urls_campaign_hint", ["campaign_hint"])
    with op.batch_alter_table("feed_submissions", schema=None) as batch_op:
        batch_op.create_index("ix_feed_submissions_run_line", ["run_id", "line_no"])
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.create_index("ix_sites_ips", ["ips"], postgresql_using="gin")


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_index("ix_sites_ips")
    with op.batch_alter_table("feed_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_submissions_run_line")
    with op.batch_alter_table("urls", schema=None) as batch_op:
        batch_op.drop_index("ix_urls_campaign_hint")
        batch_op.drop_index("ix_urls_verdict_id")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_campaign_seen")
        batch_op.drop_column("tlp")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("tlp")
    op.drop_table("submissions")
    op.drop_table("api_tokens")
    op.drop_table("board_failures")
    op.drop_table("board_sessions")
    op.drop_table("board_users")

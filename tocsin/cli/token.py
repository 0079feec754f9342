"""`tocsin token create|list|revoke`: bearer tokens for the board's API."""

from __future__ import annotations

import click

from board import auth
from store.models import TOKEN_ROLES
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.ui import err, out, table


@click.group(name="token")
def command() -> None:
    """Bearer tokens for the HTTP API (analysts' scripts and researchers)."""


@command.command(name="create")
@click.argument("name")
@click.option("--role", type=click.Choice(TOKEN_ROLES), required=True)
@pass_app
def create(app: App, name: str, role: str) -> int:
    """Print a new bearer token. It is shown once: only its hash is kept."""
    with app.db.session() as session:
        token = auth.create_token(session, name, role, app.clock.now())
    click.echo(token)
    err.print(f"token {name} created ({role}); it is not shown again")
    return 0


@command.command(name="list")
@pass_app
def list_(app: App) -> int:
    """Every token: holder, role, its first characters, last use, revoked or not."""
    with app.db.session() as session:
        rows = [
            (
                t.name,
                t.role,
                t.prefix + "…",
                t.created_at.isoformat(),
                t.last_used_at.isoformat() if t.last_used_at else "never",
                t.revoked_at.isoformat() if t.revoked_at else "",
            )
            for t in auth.list_tokens(session)
        ]
    out.print(
        table("API tokens", ["name", "role", "token", "created", "last used", "revoked"], rows)
    )
    return 0


@command.command(name="revoke")
@click.argument("name")
@pass_app
def revoke(app: App, name: str) -> int:
    """Revoke NAME's tokens; they stop working at once."""
    with app.db.session() as session:
        count = auth.revoke_token(session, name, app.clock.now())
    if not count:
        raise UsageError(f"NAME: no live token named {name!r}")
    out.print(f"revoked {count} token(s) of {name}")
    return 0

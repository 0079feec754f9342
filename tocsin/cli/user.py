"""`tocsin user add|list|remove`: the analysts' log-ins to the board."""

from __future__ import annotations

import sys

import click

from board import auth
from store.models import USER_ROLES
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.ui import out, table


@click.group(name="user")
def command() -> None:
    """Log-ins to the board (analysts and admins)."""


@command.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(USER_ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@pass_app
def add(app: App, name: str, role: str, password_stdin: bool) -> int:
    """Create or update a log-in; without --password-stdin it prompts."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise UsageError("password: empty")
    with app.db.session() as session:
        created = auth.add_user(session, name, role, password, app.clock.now())
    out.print(f"user {name} {'created' if created else 'updated'} ({role})")
    return 0


@command.command(name="list")
@pass_app
def list_(app: App) -> int:
    """Every log-in, its role and when it was last used."""
    with app.db.session() as session:
        rows = [
            (u.name, u.role, u.created_at.isoformat(), u.last_login_at or "never")
            for u in auth.list_users(session)
        ]
    out.print(table("Board users", ["name", "role", "created", "last log-in"], rows))
    return 0


@command.command(name="remove")
@click.argument("name")
@pass_app
def remove(app: App, name: str) -> int:
    """Delete a log-in and end its sessions."""
    with app.db.session() as session:
        if not auth.remove_user(session, name):
            raise UsageError(f"NAME: no user {name!r}")
    out.print(f"user {name} removed")
    return 0

"""`tocsin user` and `tocsin token`: what is stored (hashes only), and one-line errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.db import Database
from store.models import ApiToken, BoardUser

pytestmark = pytest.mark.pg


def test_users_are_created_updated_listed_and_removed(cli) -> None:
    made = cli(
        "user", "add", "alice", "--role", "analyst", "--password-stdin", input="s3cret-enough\n"
    )
    assert made.returncode == 0 and "user alice created (analyst)" in made.stdout
    again = cli(
        "user", "add", "alice", "--role", "admin", "--password-stdin", input="another-secret\n"
    )
    assert again.returncode == 0 and "updated (admin)" in again.stdout
    listed = cli("user", "list")
    assert "alice" in listed.stdout and "admin" in listed.stdout and "never" in listed.stdout
    db = Database(cli_url(cli))
    with db.session() as s:
        user = s.scalars(select(BoardUser)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert "another-secret" not in user.password_hash
    db.dispose()
    assert cli("user", "remove", "alice").returncode == 0
    gone = cli("user", "remove", "alice")
    assert gone.returncode == 2 and gone.stderr.strip() == "tocsin: NAME: no user 'alice'"


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["user", "add", "bob", "--role", "analyst", "--password-stdin"], "short\n", "at least 10"),
        (["user", "add", "bob", "--role", "analyst", "--password-stdin"], "\n", "password: empty"),
        (
            ["user", "add", "b@d name", "--role", "analyst", "--password-stdin"],
            "long-enough-1\n",
            "not a valid name",
        ),
        (["token", "create", "../x", "--role", "researcher"], None, "not a valid name"),
        (["token", "revoke", "nobody"], None, "no live token"),
    ],
)
def test_bad_account_commands_are_one_line_exit_2(cli, args, stdin, words) -> None:
    result = cli(*args, input=stdin)
    assert result.returncode == 2, result
    assert words in result.stderr and result.stderr.strip().count("\n") == 0


def test_roles_are_checked_by_the_command_line(cli) -> None:
    assert (
        cli(
            "user", "add", "x", "--role", "researcher", "--password-stdin", input="x" * 12
        ).returncode
        == 2
    )
    assert cli("token", "create", "x", "--role", "admin").returncode == 2


def test_tokens_are_printed_once_and_stored_as_hashes(cli) -> None:
    made = cli("token", "create", "rita", "--role", "researcher")
    assert made.returncode == 0
    token = made.stdout.strip()
    assert token.startswith("tcs_") and "not shown again" in made.stderr
    twice = cli("token", "create", "rita", "--role", "researcher")
    assert twice.returncode == 2 and "revoke" in twice.stderr
    db = Database(cli_url(cli))
    with db.session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert (
            row.token_hash != token and len(row.token_hash) == 64 and token not in row.prefix + "…"
        )
    db.dispose()
    listed = cli("token", "list").stdout
    assert "rita" in listed and token not in listed and token[:10] in listed
    assert cli("token", "revoke", "rita").returncode == 0
    assert cli("token", "create", "rita", "--role", "researcher").returncode == 0  # a new one


def cli_url(cli) -> str:
    from tocsin.config import load

    return load(cli.config).database.url

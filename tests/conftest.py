"""Shared fixtures: a fresh store on SQLite and on PostgreSQL, and a CLI runner.

Every store test takes the ``db`` fixture, which runs it twice: once on a
SQLite file and once on PostgreSQL (127.0.0.1:5432, database ``test``). Each
pytest process gets its own PostgreSQL schema, so parallel runs do not meet.
With ``CI=true`` a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from store import migrate
from store.db import Database
from store.models import Base
from tocsin.sandbox.core import to_toml

if TYPE_CHECKING:
    from tocsin.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("TOCSIN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_BASE, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@contextmanager
def private_pg_store(prefix: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, migrated; dropped after.
    Without PostgreSQL: skipped, or failed in CI."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    migrate.upgrade(Database(url))
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def private_pg_url() -> Iterator[str]:
    """A PostgreSQL store of this test's own (a schema, migrated, dropped after): for tests
    that run `tocsin init` (the job queue's tables) or leave processes on it."""
    with private_pg_store("tocsin_private") as url:
        yield url


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema private to this test process."""
    with private_pg_store("tocsin_test") as url:
        yield url


def truncate_all(db: Database) -> None:
    """Empty every table of a PostgreSQL store, keeping its schema."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL at the current schema, empty: SQLite then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tocsin.db'}"
        migrate.upgrade(Database(url))
        return url
    url = request.getfixturevalue("pg_url")
    database = Database(url)
    truncate_all(database)
    database.dispose()
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A store for a whole test module (costly set-ups shared by its tests): a SQLite
    file, then a PostgreSQL schema of its own, dropped at the end."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'tocsin.db'}"
        migrate.upgrade(Database(url))
        yield url
        return
    with private_pg_store("tocsin_module") as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A ready, empty store; the test runs once on SQLite and once on PostgreSQL."""
    database = Database(db_url)
    yield database
    database.dispose()


def write_config(path: Path, tables: dict[str, dict[str, object]]) -> Path:
    """Write a TOML configuration file from nested dicts (strings, numbers, bools, lists)."""
    path.write_text(to_toml(tables), encoding="utf-8")
    return path


class Cli:
    """Runs ``tocsin`` in a subprocess, as a user would, with a given config file."""

    def __init__(self, cwd: Path, config: Path | None) -> None:
        self.cwd = cwd
        self.config = config

    def __call__(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tocsin"]
        if self.config is not None:
            command += ["--config", str(self.config)]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        full_env.update(env or {})
        full_env.setdefault("COLUMNS", "200")
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [*command, *args],
            cwd=self.cwd,
            input=data,
            capture_output=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )


@pytest.fixture(scope="session")
def make_cli() -> type[Cli]:
    """The :class:`Cli` class, for fixtures that run ``tocsin`` from a folder of their own."""
    return Cli


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """The CLI against the fresh ``db_url`` store (runs on SQLite and PostgreSQL)."""
    config = write_config(tmp_path / "tocsin.toml", {"database": {"url": db_url}})
    return Cli(tmp_path, config)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    """The CLI against a SQLite store in the test's own folder (made as `tocsin init` does)."""
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    migrate.upgrade(Database(url))
    config = write_config(tmp_path / "tocsin.toml", {"database": {"url": url}})
    return Cli(tmp_path, config)


# --------------------------------------------------------------------------- the sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox internet, one per test process; sites are restored after each test."""
    from tocsin.sandbox import Sandbox

    sb = Sandbox(tmp_path_factory.mktemp("sandbox"))
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture(autouse=True)
def _sandbox_restore(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo a test's sandbox mutations (states, moves, mail, RDAP counters, canary)."""
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


class SandboxCli(Cli):
    """A :class:`Cli` whose config points at the sandbox and a fresh store."""

    def __init__(self, cwd: Path, config: Path, sandbox: Sandbox, database_url: str) -> None:
        super().__init__(cwd, config)
        self.sandbox = sandbox
        self.database_url = database_url


@pytest.fixture
def sandbox_cli(sandbox: Sandbox, tmp_path: Path, db_url: str) -> SandboxCli:
    """The CLI against the sandbox (guard open) and a fresh store: SQLite, then PostgreSQL."""
    config = sandbox.write_config(tmp_path / "tocsin.toml", db_url, guard="open")
    return SandboxCli(tmp_path, config, sandbox, db_url)


@pytest.fixture
def sandbox_cli_strict(sandbox: Sandbox, tmp_path: Path, db_url: str) -> SandboxCli:
    """As ``sandbox_cli`` with the SSRF guard on, admitting only the providers' 127.10/16."""
    config = sandbox.write_config(tmp_path / "tocsin.toml", db_url, guard="strict")
    return SandboxCli(tmp_path, config, sandbox, db_url)

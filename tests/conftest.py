"""Shared fixtures: a fresh store on SQLite and on PostgreSQL, and a CLI runner.

Every store test takes the ``db`` fixture, which runs it twice: once on a
SQLite file and once on PostgreSQL (127.0.0.1:5432, database ``test``). Each
pytest process (each xdist worker too) gets its own PostgreSQL schemas, so
parallel runs do not meet. With ``CI=true`` a missing PostgreSQL fails the run
instead of skipping.

Set-up cost matters here (``make test`` runs the suite in parallel, see
docs/architecture.md "Tests"): a SQLite store is a copy of one migrated per
process, and a PostgreSQL store is emptied with DELETE rather than TRUNCATE.
"""

from __future__ import annotations

import os
import shutil
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


# Session fixtures too costly to build on every xdist worker, with the timeout of the test
# that pays for one: the catalogue crawl is one `tocsin crawl` of every catalogue site in
# Chromium (bounded at 400 s), read by the crawl, cloaking and package tests.
SHARED_COSTLY = {"catalogue_crawl": 600}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests on one xdist worker when they share a costly fixture, so it is built
    once, not once per worker: a session fixture of ``SHARED_COSTLY`` (its users, from any
    module), or a module-scoped one (a seeded store, a board process, a browser, a crawl:
    the module). ``make test`` runs ``--dist loadgroup``, which hands every other test to
    whichever worker is free; an explicit ``xdist_group`` mark wins."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        shared = [name for name in SHARED_COSTLY if name in item.fixturenames]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
            item.add_marker(pytest.mark.timeout(SHARED_COSTLY[shared[0]]))
            continue
        info = getattr(item, "_fixtureinfo", None)
        fixtures = info.name2fixturedefs.values() if info is not None else ()
        if any(defs and defs[-1].scope == "module" for defs in fixtures):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    # xdist hands out the groups first (the largest first), then single tests in this
    # order: the `slow` ones go first, so that none is left to run alone at the end.
    items.sort(key=lambda item: not _slow_single(item))


def _slow_single(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None and (
        item.get_closest_marker("xdist_group") is None
    )


@pytest.hookimpl(trylast=True)  # after xdist wrote the groups into the node ids
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail loudly, not slowly, if loadgroup stops grouping (pytest-xdist#1386: it writes
    the group into a node id field that pytest 9.2 no longer reads)."""
    if not getattr(session.config.option, "loadgroup", False):  # set in xdist workers only
        return
    for item in session.items:
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid:
            raise pytest.UsageError(f"xdist_group ignored for {item.nodeid}: see pyproject.toml")


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


# Reset every sequence of the schema to its start, as TRUNCATE ... RESTART IDENTITY does.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)"
    " FROM pg_sequences WHERE schemaname = current_schema()"
)


def empty_pg_store(db: Database) -> None:
    """Empty every table of a PostgreSQL store and restart its ids, keeping its schema.

    DELETE with triggers off (the event log's append-only trigger, the foreign keys)
    instead of TRUNCATE: TRUNCATE gives each of the ~25 tables new files, 0.3 to 2 s a
    test on a busy machine, where deleting a test's few rows takes milliseconds.
    """
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(_RESTART_SEQUENCES)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to head once per test process; tests get copies of it
    (Alembic takes 0.1 to 0.5 s a store, a copy about 10 ms)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tocsin.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database)
    database.dispose()  # the last connection checkpoints the WAL into the file
    return path


def sqlite_store(template: Path, path: Path) -> str:
    """A fresh migrated SQLite store at ``path`` (a copy of ``template``); its URL."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL at the current schema, empty: SQLite then PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_store(request.getfixturevalue("sqlite_template"), tmp_path / "tocsin.db")
    url = request.getfixturevalue("pg_url")
    database = Database(url)
    empty_pg_store(database)
    database.dispose()
    return url


@pytest.fixture(scope="session")
def pg_module_url() -> Iterator[str]:
    """A second private PostgreSQL schema, lent to one test module at a time."""
    with private_pg_store("tocsin_module") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store for a whole test module (costly set-ups shared by its tests): a SQLite
    file, then a PostgreSQL schema emptied for the module (migrating a schema per module
    cost ~5 s on a busy machine)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "tocsin.db"
        return sqlite_store(request.getfixturevalue("sqlite_template"), path)
    url = request.getfixturevalue("pg_module_url")
    database = Database(url)
    empty_pg_store(database)
    database.dispose()
    return url


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
        # Wide tables whatever the runner set: an xdist worker has COLUMNS=80 in its environ.
        full_env["COLUMNS"] = "200"
        full_env.update(env or {})
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
def sqlite_cli(tmp_path: Path, sqlite_template: Path) -> Cli:
    """The CLI against a SQLite store in the test's own folder (made as `tocsin init` does)."""
    url = sqlite_store(sqlite_template, tmp_path / "tocsin.db")
    config = write_config(tmp_path / "tocsin.toml", {"database": {"url": url}})
    return Cli(tmp_path, config)


# Processes the tests start import what an install of tocsin has, without the dev extras.
AS_INSTALLED = Path(__file__).resolve().parent / "as_installed"


@pytest.fixture(scope="session", autouse=True)
def _subprocesses_as_installed() -> Iterator[None]:
    """Put ``tests/as_installed`` first on the path of every process the tests start
    (`tocsin`, the board, workers), not of pytest itself: it hides ``rfc3987_syntax``, a
    dev extra's dependency that costs each `tocsin notify` or `recheck` 1.2 s of CPU
    (see its docstring). Set here, after this process has its own path."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(AS_INSTALLED), before) if p)
    yield
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


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

"""A store that is missing, read-only or closed to tocsin's role: one line, exit 2
(issue 12, point 4).

Real refusals, made the way they happen: SQLite opened read-only by SQLite itself
(``mode=ro``: a ``chmod 0444`` does not stop root, and tests may run as root), and
PostgreSQL roles made here, one with no right on the schema and one that may only
SELECT. Each command runs as a subprocess, as cron would run it; the cases start
together.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import start_tocsin
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from store import migrate
from store.db import Database
from store.models import Url

PASSWORD = "pw-" + uuid.uuid4().hex[:12]  # trust auth: accepted, and must never be printed
FEED = "http://one.example/a\nhttp://two.example/b\n"
STAGES = ("ingest", "crawl", "enrich", "notify", "status")


def _start(folder: Path, database_url: str, *args: str) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tocsin.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    (folder / "feed.txt").write_text(FEED, encoding="utf-8")
    return start_tocsin(folder, config, *args)


def _args(stage: str) -> tuple[str, ...]:
    return ("ingest", "feed.txt") if stage == "ingest" else (stage,)


def _finish(started: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int, str]]:
    done = {}
    for name, proc in started.items():
        _stdout, stderr = proc.communicate(timeout=180)
        done[name] = (proc.returncode, stderr)
    return done


def _one_line(result: tuple[int, str]) -> str:
    code, stderr = result
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("tocsin: "), line
    return line


# ------------------------------------------------------------------- SQLite


@pytest.fixture(scope="module")
def sqlite_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple]]:
    root = tmp_path_factory.mktemp("store-errors")
    store = root / "ro" / "tocsin.db"
    store.parent.mkdir()
    migrate.upgrade(Database(f"sqlite:///{store}"))
    started = {
        f"missing-{stage}": _start(
            root / f"missing-{stage}",
            f"sqlite:///{root / 'typo' / stage / 'tocsin.db'}",
            *_args(stage),
        )
        for stage in STAGES
    }
    readonly = f"sqlite:///file:{store}?mode=ro&uri=true"
    started["readonly-ingest"] = _start(root / "readonly", readonly, "ingest", "feed.txt")
    return root, _finish(started)


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_creates_a_missing_store(
    sqlite_runs: tuple[Path, dict[str, tuple]], stage: str
) -> None:
    root, runs = sqlite_runs
    line = _one_line(runs[f"missing-{stage}"])
    missing = root / "typo" / stage / "tocsin.db"
    assert f"no store at {missing} (database.url): run `tocsin init` first" in line
    assert not (root / "typo").exists()  # neither the folders nor an empty store


def test_a_read_only_sqlite_store_during_ingest(sqlite_runs: tuple[Path, dict[str, tuple]]) -> None:
    root, runs = sqlite_runs
    line = _one_line(runs["readonly-ingest"])
    assert "refused: attempt to write a readonly database" in line
    assert "INSERT" not in line  # the statement and its feed text stay out of it
    assert _url_count(f"sqlite:///{root / 'ro' / 'tocsin.db'}") == 0


# --------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg_roles(pg_url: str) -> Iterator[dict[str, str]]:
    """Two login roles on the tests' private schema: ``none`` has no right on it at
    all, ``reader`` may use it and SELECT; their URLs carry a password. Dropped after."""
    schema = make_url(pg_url).query["options"].rpartition("=")[2]
    admin = create_engine(pg_url)
    names = {kind: f"tocsin_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("none", "reader")}
    with admin.begin() as conn:
        for name in names.values():
            conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'"))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {names["reader"]}'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {names["reader"]}'))
    base = make_url(pg_url)
    urls = {
        kind: base.set(username=name, password=PASSWORD).render_as_string(hide_password=False)
        for kind, name in names.items()
    }
    try:
        yield urls | {f"{kind}-role": name for kind, name in names.items()}
    finally:
        with admin.begin() as conn:
            for name in names.values():
                conn.execute(text(f"DROP OWNED BY {name}"))
                conn.execute(text(f"DROP ROLE {name}"))
        admin.dispose()


@pytest.fixture(scope="module")
def pg_runs(
    pg_roles: dict[str, str], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    root = tmp_path_factory.mktemp("pg-roles")
    started = {
        f"none-{stage}": _start(root / f"none-{stage}", pg_roles["none"], *_args(stage))
        for stage in STAGES
    }
    started["reader-ingest"] = _start(root / "reader", pg_roles["reader"], "ingest", "feed.txt")
    before = _url_count(pg_url)  # the schema is this test process's: others' rows may be in it
    return _finish(started) | {"urls-before": before}


def _url_count(url: str) -> int:
    db = Database(url)
    try:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(Url)) or 0
    finally:
        db.dispose()


@pytest.mark.parametrize("stage", STAGES)
def test_a_role_without_rights_on_the_schema(
    pg_roles: dict[str, str], pg_runs: dict, stage: str
) -> None:
    line = _one_line(pg_runs[f"none-{stage}"])
    assert f"the role {pg_roles['none-role']} may use no schema of its search_path" in line
    assert "grant it USAGE" in line and "tocsin init" not in line
    assert PASSWORD not in line and ":***@" in line


def test_a_role_that_may_only_read_during_ingest(
    pg_roles: dict[str, str], pg_runs: dict, pg_url: str
) -> None:
    line = _one_line(pg_runs["reader-ingest"])
    assert "refused: permission denied for table" in line
    assert PASSWORD not in line and ":***@" in line
    assert _url_count(pg_url) == pg_runs["urls-before"]  # nothing half-written

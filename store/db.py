"""Engine and sessions for SQLite (WAL) and PostgreSQL.

SQLite needs two things SQLAlchemy does not do by default: WAL mode with a busy
timeout, so readers and one writer coexist across processes; and an explicit
``BEGIN IMMEDIATE`` for transactions that claim work, so two processes cannot
both read "free" and then both write. :meth:`Database.claim` gives that; on
PostgreSQL the same code uses row locks (``FOR UPDATE SKIP LOCKED``).

Text reaches the store from attackers (page titles, console lines, RDAP
remarks, mail replies), and PostgreSQL refuses a NUL character in text and
JSON: one such string would fail its whole transaction, again on every retry.
So every statement's text parameters and every JSON value have NUL replaced
by U+FFFD (what an HTML parser makes of it), on both engines alike.

PostgreSQL connections plan each statement for the tables as they are now
(``plan_cache_mode``, see ``PIPELINE_SETTINGS``); the board's have settings of
their own (``READER_SETTINGS``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.dburl import mask_password, shown_url
from tocsin.errors import ConfigError, StoreError

# The database is down, locked past its timeout or gone: nothing can be stored now,
# so a writer keeps its work due rather than blaming one record.
UNAVAILABLE = (OperationalError, InterfaceError)


def driver_problem(exc: BaseException, url: str) -> str:
    """A database error as one line: the driver's own words (what was refused, and why),
    the password masked, never the statement or its parameters (they hold feed text)."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(mask_password(str(orig), url).split()) or type(orig).__name__


def refused(exc: BaseException, url: str) -> StoreError:
    """The one-line error for a store that refused a statement: read-only, a role without
    the rights, a full disk. The command stops (exit 2); a traceback is for ``-vv``."""
    return StoreError(f"the store {shown_url(url)} refused: {driver_problem(exc, url)}")


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _postgresql_setup(engine: Engine, settings: tuple[str, ...]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # (A SET, not connect_args: those would replace options given in the URL.)
        autocommit, dbapi_conn.autocommit = dbapi_conn.autocommit, True
        for setting in settings:
            dbapi_conn.execute(f"SET {setting}")
        dbapi_conn.autocommit = autocommit


# The pipeline's connections plan every execution for the table sizes of the moment.
# Tables grow from empty within a run (the first notify writes 100,000 notice items), and
# a plan cached while they were small, by psycopg's prepared statements or by a
# foreign-key check, keeps scanning them whole: that doubled notify's time.
PIPELINE_SETTINGS = ("plan_cache_mode = force_custom_plan",)
# The board only reads tables whose sizes hardly move while it runs: cached plans are
# fine, and one request must not start parallel workers (process starts, on two cores).
READER_SETTINGS = ("max_parallel_workers_per_gather = 0",)


NUL, NUL_STAND_IN = "\x00", "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` with NUL replaced in every string inside it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return value.replace(NUL, NUL_STAND_IN) if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_nul(v) for v in value)
    return value


def _json_dumps(value: Any) -> str:
    text = json.dumps(value)
    return json.dumps(without_nul(value)) if "\\u0000" in text else text


def _row_without_nul(row: Any) -> Any:
    """One statement's parameters (a dict or a tuple), copied only if a NUL is in them."""
    values = row.values() if isinstance(row, dict) else row
    if not any(type(v) is str and NUL in v for v in values):
        return row
    return without_nul(row)


def _no_nul_setup(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _scrub(
        _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        if not params:
            return statement, params
        # By shape, not by the executemany flag: SQLAlchemy's batched INSERTs
        # ("insertmanyvalues") raise the flag for one statement with one dict.
        if not isinstance(params, dict) and isinstance(params[0], dict | tuple | list):
            return statement, [_row_without_nul(row) for row in params]
        return statement, _row_without_nul(params)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other engines and in-memory databases."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a URI filename: leave it to SQLite
        return None
    return Path(parsed.database).expanduser()


class Database:
    """One engine and its session factory, built from ``database.url``.

    ``create=False``: a SQLite file that does not exist is a :class:`StoreError`, and
    no folder is made for it, so a mistyped path is said instead of becoming a new
    empty store; only ``tocsin init`` creates (every other command opens with it off).
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 5,
        pg_settings: tuple[str, ...] = PIPELINE_SETTINGS,
        create: bool = True,
    ) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            problem = mask_password(f"not a database URL: {exc}", url)
            raise ConfigError("database.url", problem) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_serializer": _json_dumps}
        if self.dialect == "sqlite":
            path = sqlite_file(self.url)
            if path is not None and not create and not path.is_file():
                raise StoreError(f"no store at {path} (database.url): run `tocsin init` first")
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            # Connections past pool_size are closed when handed back: a server that
            # runs many threads (the board) keeps as many as it uses, or it reconnects
            # (a new backend process) on most requests.
            kwargs["pool_size"] = pool_size
        try:
            self.engine = create_engine(self.url, **kwargs)
        except Exception as exc:  # unknown driver, bad options
            raise ConfigError("database.url", mask_password(str(exc), self.url)) from None
        _no_nul_setup(self.engine)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        elif self.dialect == "postgresql":
            _postgresql_setup(self.engine, pg_settings)
        self._claim_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._claim_sessions = sessionmaker(self._claim_engine, expire_on_commit=False)

    @property
    def shown_url(self) -> str:
        """The URL with its password masked: what may be printed or logged."""
        return shown_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def claim(self) -> Iterator[Session]:
        """A write transaction that takes the write lock up front on SQLite.

        Use it where rows are selected and then claimed; pair the SELECT with
        ``.with_for_update(skip_locked=True)``, which PostgreSQL honours.
        """
        with self._claim_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

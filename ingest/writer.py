"""Writing records to the store: URLs, feed submissions, rejects, the run's totals.

:class:`Store` is the database side. It takes records in chunks, writes each
chunk at once (Core inserts run as ``executemany``) and commits every
``ingest.batch_size`` records together with the run's totals, so a crash loses
at most the batch in flight and the totals always match what was committed.
URLs are inserted with ``ON CONFLICT (url_hash) DO NOTHING``; the known ones
are then looked up, touched (``last_seen``) and counted ``duplicate``, so
running the same feed again counts every URL ``duplicate``.

:class:`Writer` is what the parser talks to. A small run writes in-process.
Past ``ingest.parallel_after`` records it hands the :class:`Store` to a child
process (``python -m ingest.writer_process``) and sends it the chunks over a
pipe, so parsing the next chunk and writing this one use both cores: a thread
would not do, because the driver takes the GIL back for every row it binds.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.records import Bad, Entry
from store.db import Database
from store.models import FeedSubmission, IngestRun, Reject, Url
from tocsin.errors import StoreError

log = logging.getLogger(__name__)

_URLS = Url.__table__
_SUBMISSIONS = FeedSubmission.__table__
_REJECTS = Reject.__table__
_RUNS = IngestRun.__table__
CHUNK = 5000  # records written (or sent to the writer process) at a time
_LOOKUP_CHUNK = 2000  # bound parameters per IN (...), within SQLite's and PostgreSQL's limits
# While a run writes to SQLite: a bigger page cache, and a WAL checkpoint (with its fsync)
# every 200 MB of log instead of every 4 MB. Reset, and checkpointed, when the run ends.
_SQLITE_BULK = ("PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=50000")
_SQLITE_DEFAULTS = (
    "PRAGMA cache_size=-2000",
    "PRAGMA wal_autocheckpoint=1000",
    "PRAGMA journal_size_limit=67108864",
    "PRAGMA wal_checkpoint(PASSIVE)",
)
# Column widths of the feed's own fields: longer values are cut, never refused.
_REPORTER_W, _FEED_REF_W, _THREAT_W, _TARGET_W = 200, 200, 100, 200

# What travels to the store, as plain tuples (cheap to pickle), values already as the
# driver takes them: accepted (url, url_hash, host, (line_no, reporter, feed_ref, threat,
# tags, target, extra, reported_at, raw)); rejected (line_no, reason, raw, raw_len).
Row = tuple[Any, ...]


@dataclass
class Counts:
    new: int = 0
    duplicate: int = 0
    rejected: int = 0

    def add(self, other: Counts) -> None:
        self.new += other.new
        self.duplicate += other.duplicate
        self.rejected += other.rejected


@dataclass(frozen=True)
class SourceMeta:
    """What every row of one source shares."""

    ref: str
    feed: str
    format: str


def _json(value: Any) -> str:
    """JSON for a JSON column: what the SQLite dialect stores; PostgreSQL casts it to JSONB."""
    return json.dumps(value)


def _same(value: Any) -> Any:
    return value


def _tag_key(tags: list[str] | None) -> tuple[str, ...] | None:
    return None if tags is None else tuple(tags)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _memo(function: Any, key: Any) -> Any:
    """``function`` remembering its results by ``key(argument)`` (tags and dates repeat)."""
    seen: dict[Any, Any] = {}

    def call(argument: Any) -> Any:
        k = key(argument)
        if k not in seen:
            if len(seen) > 10_000:
                seen.clear()
            seen[k] = function(argument)
        return seen[k]

    return call


_URL_COLUMNS = (
    "id",
    "url",
    "url_hash",
    "host",
    "verdict",
    "campaign_hint",
    "first_seen",
    "last_seen",
    "next_check_at",
    "check_count",
)
_SUBMISSION_COLUMNS = (
    "run_id",
    "url_id",
    "status",
    "source",
    "source_ref",
    "format",
    "line_no",
    "reporter",
    "feed_ref",
    "threat",
    "tags",
    "target",
    "extra",
    "reported_at",
    "submitted_at",
    "raw",
)
_REJECT_COLUMNS = (
    "run_id",
    "source_ref",
    "format",
    "line_no",
    "reason",
    "raw",
    "raw_len",
    "created_at",
)


class _Insert:
    """An INSERT compiled once for the dialect, run with the driver's ``executemany``.

    Core's per-row parameter handling costs more than the insert itself (about
    35 µs a row on SQLite against 13 for the insert), mostly in bind
    processors re-run on values that are the same for the whole batch. Here
    each column's own processor (the one Core would use) runs once for a
    batch-wide value, and per row only where values vary. Rows are tuples in
    ``columns`` order, which is the table's column order.
    """

    def __init__(
        self, table: Any, columns: Sequence[str], dialect: Any, *, skip_known: bool = False
    ) -> None:
        statement: Any = insert(table)
        if skip_known and dialect.name == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["url_hash"])
        statement = statement.values({c: bindparam(c, type_=table.c[c].type) for c in columns})
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.columns = tuple(columns)
        if self.positional and tuple(compiled.positiontup or ()) != self.columns:
            raise RuntimeError(f"bind order {compiled.positiontup} is not {self.columns}")
        if set(compiled.binds) != set(columns):
            raise RuntimeError(f"binds {sorted(compiled.binds)} are not {sorted(columns)}")
        self._procs = {c: table.c[c].type._cached_bind_processor(dialect) for c in columns}

    def value(self, column: str, value: Any) -> Any:
        """``value`` as the driver takes it for ``column`` (for batch-wide values)."""
        proc = self._procs[column]
        return value if proc is None or value is None else proc(value)

    def processor(self, column: str) -> Any:
        """A function doing :meth:`value` for ``column``, for values that vary by row."""
        proc = self._procs[column]
        if proc is None:
            return lambda v: v
        return lambda v: None if v is None else proc(v)

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.positional:
            conn.exec_driver_sql(self.sql, rows)
        else:
            conn.exec_driver_sql(self.sql, [dict(zip(self.columns, r, strict=True)) for r in rows])


class Store:
    """The database side of a run: chunks in, one transaction per ``batch_size`` records."""

    def __init__(
        self, db: Database, now: datetime, run_id: int, batch_size: int, campaign: str | None
    ) -> None:
        self.now = now
        self.run_id = run_id
        self.batch_size = batch_size
        self.campaign = campaign
        self.conn = db.engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        self.sqlite = self.conn.dialect.name == "sqlite"
        if self.sqlite:
            self._pragmas(_SQLITE_BULK)
        self._inserts = (
            _Insert(_URLS, _URL_COLUMNS, self.conn.dialect, skip_known=True),
            _Insert(_SUBMISSIONS, _SUBMISSION_COLUMNS, self.conn.dialect),
            _Insert(_REJECTS, _REJECT_COLUMNS, self.conn.dialect),
        )
        self._transaction: Any = None
        self._pending = Counts()  # written, not committed
        self._size = 0
        self._committed = Counts()  # committed since the last commit() call

    def _pragmas(self, pragmas: Iterable[str]) -> None:
        driver = self.conn.connection.driver_connection  # outside any transaction
        for pragma in pragmas:
            driver.execute(pragma)

    def write(self, source: SourceMeta, accepted: list[Row], rejected: list[Row]) -> None:
        """Write one chunk; commit when the transaction holds ``batch_size`` records."""
        if self._transaction is None:  # SQLite: BEGIN IMMEDIATE, so this run is the one writer
            self._transaction = self.conn.begin()
        try:
            self._pending.add(self._write(self.conn, source, accepted, rejected))
        except BaseException:
            self.rollback()
            raise
        self._size += len(accepted) + len(rejected)
        if self._size >= self.batch_size:
            self._commit()

    def commit(self) -> Counts:
        """Commit what is written; return the counts committed since the last call."""
        self._commit()
        committed, self._committed = self._committed, Counts()
        return committed

    def _commit(self) -> None:
        if self._transaction is None:
            return
        pending = self._pending
        self.conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id == self.run_id)
            .values(
                new=_RUNS.c.new + pending.new,
                duplicate=_RUNS.c.duplicate + pending.duplicate,
                rejected=_RUNS.c.rejected + pending.rejected,
            )
        )
        self._transaction.commit()
        self._transaction = None
        self._committed.add(pending)
        self._pending, self._size = Counts(), 0

    def rollback(self) -> None:
        if self._transaction is not None:
            self._transaction.rollback()
            self._transaction = None
        self._pending, self._size = Counts(), 0

    def close(self) -> None:
        """Roll back anything uncommitted, restore SQLite's settings, release the connection."""
        try:
            self.rollback()
            if self.sqlite:
                self._pragmas(_SQLITE_DEFAULTS)
        finally:
            self.conn.close()

    # -- one chunk ---------------------------------------------------------------

    def _lookup(self, conn: Connection, hashes: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(list(hashes), _LOOKUP_CHUNK):
            query = select(_URLS.c.url_hash, _URLS.c.id).where(_URLS.c.url_hash.in_(chunk))
            found.update((row[0], row[1]) for row in conn.execute(query))
        return found

    def _insert_urls(
        self, conn: Connection, urls: _Insert, first_of: dict[str, Row]
    ) -> dict[str, int]:
        """Insert the batch's URLs unless already stored; return the new ones' ids by hash.

        ``ON CONFLICT (url_hash) DO NOTHING`` skips the known ones, so the
        batch needs no lookup before it writes. SQLite has one writer at a time
        and the batch holds the write lock, so the ids are given here, after
        the largest one, and the new rows are read back by that id range.
        PostgreSQL returns them (``RETURNING``).
        """
        now = self.now
        if self.sqlite:
            first = (conn.execute(select(func.max(_URLS.c.id))).scalar() or 0) + 1
            pending = urls.value("verdict", "pending")
            hint = urls.value("campaign_hint", self.campaign)
            when = urls.value("first_seen", now)
            urls.run(
                conn,
                [
                    (first + n, a[0], h, a[2], pending, hint, when, when, when, 0)
                    for n, (h, a) in enumerate(first_of.items())
                ],
            )
            rows = conn.exec_driver_sql("SELECT url_hash, id FROM urls WHERE id >= ?", (first,))
            return {row[0]: row[1] for row in rows}
        statement = (
            postgresql.insert(_URLS)
            .on_conflict_do_nothing(index_elements=["url_hash"])
            .returning(_URLS.c.url_hash, _URLS.c.id)
        )
        rows = [
            {
                "url": a[0],
                "url_hash": h,
                "host": a[2],
                "verdict": "pending",
                "campaign_hint": self.campaign,
                "first_seen": now,
                "last_seen": now,
                "next_check_at": now,
                "check_count": 0,
            }
            for h, a in first_of.items()
        ]
        return {row[0]: row[1] for row in conn.execute(statement, rows)}

    def _write(
        self, conn: Connection, source: SourceMeta, accepted: list[Row], rejected: list[Row]
    ) -> Counts:
        now, counts = self.now, Counts()
        urls, submissions, rejects = self._inserts
        first_of: dict[str, Row] = {}
        for row in accepted:
            first_of.setdefault(row[1], row)
        ids = self._insert_urls(conn, urls, first_of) if first_of else {}
        known = self._lookup(conn, first_of.keys() - ids.keys())
        if known:
            values: dict[str, Any] = {"last_seen": now}
            if self.campaign:
                values["campaign_hint"] = func.coalesce(_URLS.c.campaign_hint, self.campaign)
            for chunk in _chunks(list(known.values()), _LOOKUP_CHUNK):
                conn.execute(update(_URLS).where(_URLS.c.id.in_(chunk)).values(**values))
        value = submissions.value
        run_id, feed, ref = (
            value("run_id", self.run_id),
            value("source", source.feed),
            value("source_ref", source.ref),
        )
        fmt, submitted = value("format", source.format), value("submitted_at", now)
        new, duplicate = value("status", "new"), value("status", "duplicate")
        rows = []
        for row in accepted:
            _, h, _, (line_no, reporter, feed_ref, threat, tags, target, extra, when, raw) = row
            if h in ids and first_of[h] is row:
                status, url_id = new, ids[h]
                counts.new += 1
            else:
                status, url_id = duplicate, known[h] if h in known else ids[h]
                counts.duplicate += 1
            rows.append(
                (
                    run_id,
                    url_id,
                    status,
                    feed,
                    ref,
                    fmt,
                    line_no,
                    reporter,
                    feed_ref,
                    threat,
                    tags,
                    target,
                    extra,
                    when,
                    submitted,
                    raw,
                )
            )
        submissions.run(conn, rows)
        if rejected:
            raw_of = rejects.processor("raw")
            created = rejects.value("created_at", now)
            rejects.run(
                conn,
                [
                    (run_id, ref, fmt, line_no, reason, raw_of(raw), raw_len, created)
                    for line_no, reason, raw, raw_len in rejected
                ],
            )
            counts.rejected += len(rejected)
        return counts


class Writer:
    """Collects records into chunks for the :class:`Store`, in-process or in a child.

    ``parallel_after``: once a run has written that many records, the rest go
    to a writer process (0: never). Counts are what was committed, per source:
    call :meth:`sync` at the end of a source, then :meth:`take_counts`.
    """

    def __init__(
        self,
        db: Database,
        now: datetime,
        *,
        batch_size: int,
        campaign: str | None = None,
        parallel_after: int = 0,
    ) -> None:
        self.db = db
        self.now = now
        self.batch_size = batch_size
        self.campaign = campaign
        self.parallel_after = parallel_after
        self.run_id = 0
        self._source: SourceMeta | None = None
        self._accepted: list[Row] = []
        self._rejected: list[Row] = []
        self._written = 0
        self._store: Store | None = None
        self._child: _Child | None = None
        self._counts = Counts()
        # Values prepared here, on the parser's side, so the writer process does less.
        reported_at = _SUBMISSIONS.c.reported_at.type._cached_bind_processor(db.engine.dialect)
        self._time = _memo(lambda when: None if when is None else reported_at(when), _same)
        self._tags_json = _memo(lambda tags: None if tags is None else _json(tags), _tag_key)

    def start_run(self, sources: list[str]) -> int:
        """Record the run; the store's connection stays open until :meth:`finish_run`."""
        with self.db.session() as session:
            run = IngestRun(
                started_at=self.now,
                sources=sources,
                campaign=self.campaign,
                new=0,
                duplicate=0,
                rejected=0,
            )
            session.add(run)
            session.flush()
            self.run_id = run.id
        self._store = Store(self.db, self.now, self.run_id, self.batch_size, self.campaign)
        return self.run_id

    def begin_source(self, meta: SourceMeta) -> None:
        self.flush()
        self._source = meta

    def add(self, entry: Entry, url: str, url_hash: str, host: str) -> None:
        """Queue an accepted record with its normalised URL."""
        f = entry.fields
        reporter, feed_ref, threat, target = f.reporter, f.feed_ref, f.threat, f.target
        self._accepted.append(
            (
                url,
                url_hash,
                host,
                (
                    entry.line_no,
                    reporter
                    if reporter is None or len(reporter) <= _REPORTER_W
                    else reporter[:_REPORTER_W],
                    feed_ref
                    if feed_ref is None or len(feed_ref) <= _FEED_REF_W
                    else feed_ref[:_FEED_REF_W],
                    threat if threat is None or len(threat) <= _THREAT_W else threat[:_THREAT_W],
                    self._tags_json(f.tags),
                    target if target is None or len(target) <= _TARGET_W else target[:_TARGET_W],
                    None if f.extra is None else _json(f.extra),
                    self._time(f.reported_at),
                    entry.raw,
                ),
            )
        )
        if len(self._accepted) + len(self._rejected) >= CHUNK:
            self.flush()

    def reject(self, bad: Bad) -> None:
        """Queue a rejected record."""
        self._rejected.append((bad.line_no, bad.reason, bad.raw, bad.raw_len))
        if len(self._accepted) + len(self._rejected) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write (or send) the pending chunk."""
        accepted, rejected = self._accepted, self._rejected
        if not (accepted or rejected) or self._source is None:
            return
        self._accepted, self._rejected = [], []
        size = len(accepted) + len(rejected)
        if self._child is None and 0 < self.parallel_after < self._written + size:
            self._go_parallel()
        self._written += size
        if self._child is not None:
            self._child.send(("chunk", self._source, accepted, rejected))
        else:
            assert self._store is not None
            self._store.write(self._source, accepted, rejected)

    def sync(self) -> None:
        """Commit everything so far (the end of a source)."""
        self.flush()
        if self._child is not None:
            self._counts.add(self._child.call(("commit",)))
        elif self._store is not None:
            self._counts.add(self._store.commit())

    def take_counts(self) -> Counts:
        """What was committed since the last call; call :meth:`sync` first."""
        counts, self._counts = self._counts, Counts()
        return counts

    def finish_run(self) -> None:
        """Close the store (uncommitted records are dropped) and stamp the run finished."""
        try:
            if self._child is not None:
                child, self._child = self._child, None
                child.close()
            if self._store is not None:
                store, self._store = self._store, None
                store.close()
        finally:
            with self.db.session() as session:
                session.execute(
                    update(_RUNS).where(_RUNS.c.id == self.run_id).values(finished_at=self.now)
                )

    def _go_parallel(self) -> None:
        assert self._store is not None
        self._counts.add(self._store.commit())
        self._store.close()
        self._store = None
        log.debug("ingest: %d records written, a writer process takes over", self._written)
        try:
            self._child = _Child(self.db.url, self.now, self.run_id, self.batch_size, self.campaign)
        except (OSError, StoreError) as exc:  # no process to be had: carry on in-process
            log.warning("ingest: no writer process (%s); writing in-process", exc)
            self.parallel_after = 0
            self._store = Store(self.db, self.now, self.run_id, self.batch_size, self.campaign)


class _Child:
    """The parent's end of the writer process: pickled messages over its stdin and stdout."""

    def __init__(
        self, url: str, now: datetime, run_id: int, batch_size: int, campaign: str | None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.writer_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        # The database URL travels over the pipe, not the command line (ps shows that).
        try:
            self.call(("open", url, now, run_id, batch_size, campaign))
        except BaseException:
            self.close()
            raise

    def send(self, message: tuple[Any, ...] | None) -> None:
        assert self.proc.stdin is not None
        try:
            pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise StoreError(f"the ingest writer process ended (code {self.proc.wait()})") from None

    def call(self, message: tuple[Any, ...]) -> Counts:
        """Send ``message`` and wait for the answer: counts, or the child's failure."""
        self.send(message)
        assert self.proc.stdout is not None
        try:
            answer = pickle.load(self.proc.stdout)  # noqa: S301 - our own child's pipe
        except EOFError:
            raise StoreError(f"the ingest writer process ended (code {self.proc.wait()})") from None
        if answer[0] == "error":
            raise StoreError(f"writing to the store failed: {answer[1]}")
        return Counts(*answer[1:])

    def close(self) -> None:
        try:
            self.send(None)
        except StoreError:
            pass
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(inbox: Any, outbox: Any) -> None:
    """The writer process: read messages from ``inbox``, answer on ``outbox``.

    After a failure it answers every later ``commit`` with the failure and
    writes nothing more, so the parent sees it and the run stops cleanly.
    """
    store: Store | None = None
    db: Database | None = None
    failure: str | None = None
    try:
        while True:
            try:
                message = pickle.load(inbox)  # noqa: S301 - our own parent's pipe
            except EOFError:
                return
            if message is None:
                return
            kind = message[0]
            try:
                if failure is not None:
                    if kind != "chunk":
                        pickle.dump(("error", failure), outbox)
                elif kind == "open":
                    url, now, run_id, batch_size, campaign = message[1:]
                    db = Database(url)
                    store = Store(db, now, run_id, batch_size, campaign)
                    pickle.dump(("ok", 0, 0, 0), outbox)
                elif kind == "chunk":
                    assert store is not None
                    store.write(*message[1:])
                elif kind == "commit":
                    assert store is not None
                    counts = store.commit()
                    pickle.dump(("ok", counts.new, counts.duplicate, counts.rejected), outbox)
            except Exception as exc:
                # The parent says it in one line (StoreError); the traceback is for -vv.
                log.debug("ingest writer process", exc_info=True)
                failure = (
                    f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                )
                if kind != "chunk":
                    pickle.dump(("error", failure), outbox)
            outbox.flush()
    finally:
        if store is not None:
            store.close()
        if db is not None:
            db.dispose()

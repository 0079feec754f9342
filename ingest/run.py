"""One ingest run: every source opened, detected, parsed, normalised and stored.

A source that cannot be read at all (missing file, HTTP error, over the size
cap, a CSV without a url column) is reported and the others still run. Every
record a source yields ends up ``new``, ``duplicate`` or ``rejected``, so
``new + duplicate + rejected == records`` for each source and for the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

from ingest.detect import FEED_NAMES, SNIFF_BYTES, detect
from ingest.formats import Parser
from ingest.lines import check_line
from ingest.records import Bad, Entry, Fields
from ingest.sources import open_source
from ingest.writer import SourceMeta, Writer
from store.db import Database
from tocsin.config import Config
from tocsin.errors import InvalidUrl, TocsinError
from tocsin.ui import Bar
from tocsin.urls import normalise_url_host, url_hash

log = logging.getLogger(__name__)

ProgressFactory = Callable[[str, float | None], AbstractContextManager[Bar]]
_TICK = 2000  # records between progress updates


@dataclass
class SourceReport:
    """What became of one SOURCE."""

    ref: str
    format: str = ""
    feed: str = ""
    packed: str | None = None
    records: int = 0
    new: int = 0
    duplicate: int = 0
    rejected: int = 0
    skipped: int = 0  # blank lines, comments and headers: not records
    error: str | None = None


@dataclass
class IngestReport:
    run_id: int
    sources: list[SourceReport]

    @property
    def new(self) -> int:
        return sum(s.new for s in self.sources)

    @property
    def duplicate(self) -> int:
        return sum(s.duplicate for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error]


def _no_progress(description: str, total: float | None) -> AbstractContextManager[Bar]:
    return nullcontext(Bar(None, None))


def ingest_sources(
    config: Config,
    db: Database,
    now: datetime,
    refs: list[str],
    *,
    fmt: str = "auto",
    source_name: str | None = None,
    campaign: str | None = None,
    progress: ProgressFactory = _no_progress,
) -> IngestReport:
    """Ingest every SOURCE in ``refs`` into ``db`` as one run; see the module docstring."""
    writer = Writer(
        db,
        now,
        batch_size=config.ingest.batch_size,
        campaign=campaign,
        parallel_after=config.ingest.parallel_after,
    )
    run_id = writer.start_run(list(refs))
    try:
        reports = _ingest_all(config, writer, refs, fmt, source_name, progress)
    finally:
        writer.finish_run()
    return IngestReport(run_id, reports)


def _ingest_all(
    config: Config,
    writer: Writer,
    refs: list[str],
    fmt: str,
    source_name: str | None,
    progress: ProgressFactory,
) -> list[SourceReport]:
    reports = []
    for ref in refs:
        report = SourceReport(ref)
        reports.append(report)
        try:
            _ingest_one(config, writer, report, fmt, source_name, progress)
        except TocsinError as exc:
            report.error = str(exc)
            log.debug("source %s failed", ref, exc_info=True)
        finally:
            _settle(writer, report)
    return reports


def _settle(writer: Writer, report: SourceReport) -> None:
    """Commit a source's records and put what became of them in its report."""
    writer.sync()
    counts = writer.take_counts()
    report.new, report.duplicate, report.rejected = (
        counts.new,
        counts.duplicate,
        counts.rejected,
    )


def _taker(writer: Writer, max_line: int) -> Callable[[Entry | Bad], None]:
    """What becomes of one record: rejected as it came, or normalised and added."""
    add, reject = writer.add, writer.reject

    def take(item: Entry | Bad) -> None:
        if item.__class__ is Bad:
            reject(item)
            return
        try:
            url, host = normalise_url_host(item.url, max_length=max_line)
        except InvalidUrl as exc:
            raw = item.raw.encode("utf-8")
            reject(Bad(item.line_no, exc.reason, raw[:max_line], len(raw)))
        else:
            add(item, url, url_hash(url), host)

    return take


def ingest_urls(
    config: Config,
    db: Database,
    now: datetime,
    urls: list[str],
    *,
    ref: str,
    source_name: str,
    campaign: str | None = None,
) -> IngestReport:
    """Ingest a list of URLs (an API submission) as one run with one source, ``ref``.

    Each element is one record, numbered from 1: nothing is skipped, so an empty
    or ``#`` element is rejected (``no-url``) rather than left out of the count.
    """
    max_line = config.ingest.max_line
    writer = Writer(db, now, batch_size=config.ingest.batch_size, campaign=campaign)
    run_id = writer.start_run([ref])
    report = SourceReport(ref, format="api", feed=source_name)
    try:
        writer.begin_source(SourceMeta(ref, source_name, "api"))
        take = _taker(writer, max_line)
        for line_no, text in enumerate(urls, start=1):
            raw = text.encode("utf-8", "surrogatepass")
            checked = check_line(line_no, raw, len(raw), max_line)
            if isinstance(checked, str):
                url = checked.strip()
                if url and not url.startswith("#"):
                    checked = Entry(line_no, checked, url, Fields(threat=None))
                else:
                    checked = Bad(line_no, "no-url", raw[:max_line], len(raw))
            take(checked)
        report.records = len(urls)
        _settle(writer, report)
    finally:
        writer.finish_run()
    return IngestReport(run_id, [report])


def _ingest_one(
    config: Config,
    writer: Writer,
    report: SourceReport,
    fmt: str,
    source_name: str | None,
    progress: ProgressFactory,
) -> None:
    max_line = config.ingest.max_line
    with open_source(report.ref, config) as opened:
        report.packed = opened.packed
        if fmt == "auto":
            fmt = detect(opened.stream.peek(SNIFF_BYTES)[:SNIFF_BYTES], opened.names)
        report.format = fmt
        report.feed = source_name or FEED_NAMES[fmt]
        writer.begin_source(SourceMeta(report.ref, report.feed, fmt))
        parser = Parser(fmt, opened.stream, max_line)
        shown = 0
        label = report.ref if len(report.ref) <= 40 else "…" + report.ref[-39:]
        with progress(f"{label} ({fmt})", opened.size) as bar:
            records = 0
            take = _taker(writer, max_line)
            try:
                for item in parser:
                    records += 1
                    take(item)
                    if not records % _TICK:
                        bar.advance(parser.consumed - shown)
                        shown = parser.consumed
            finally:
                report.records += records
                report.skipped = parser.skipped
                bar.advance(parser.consumed - shown)

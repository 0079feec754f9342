"""`tocsin ingest`: read suspect URLs from files, ``-`` (stdin) or http(s) URLs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import click
from rich.markup import escape

from ingest import FORMATS, IngestReport, ingest_sources
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.ui import Bar, err, out, progress, table


def feed_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """SOURCE... and the options that say how to read them (shared with ``tocsin run``)."""
    for decorator in reversed(
        (
            click.argument("sources", nargs=-1, required=True, metavar="SOURCE..."),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(("auto", *FORMATS)),
                default="auto",
                show_default=True,
                help="The feed format; auto detects it from each source's content.",
            ),
            click.option(
                "--source",
                "source_name",
                metavar="NAME",
                help="The feed's name (default: by format).",
            ),
            click.option("--campaign", metavar="NAME", help="Tag every URL with this campaign."),
        )
    ):
        func = decorator(func)
    return func


@click.command(name="ingest")
@feed_options
@pass_app
def command(
    app: App, sources: tuple[str, ...], fmt: str, source_name: str | None, campaign: str | None
) -> int:
    """Read suspect URLs from files, - (stdin) or http(s) URLs.

    Every record ends up new, duplicate or rejected; rejected ones are kept
    with their line number and reason (see `tocsin rejects`). Exit code 1 when
    a source could not be read at all.
    """
    if source_name is not None and not 0 < len(source_name.strip()) <= 100:
        raise UsageError("--source: expected a name of 1 to 100 characters")
    if campaign is not None and not 0 < len(campaign.strip()) <= 200:
        raise UsageError("--campaign: expected a name of 1 to 200 characters")
    if list(sources).count("-") > 1:
        raise UsageError("SOURCE: stdin (-) can be read only once")

    def bar(description: str, total: float | None) -> AbstractContextManager[Bar]:
        return progress(escape(description), total, quiet=app.quiet)

    report = ingest_sources(
        app.config,
        app.db,
        app.clock.now(),
        list(sources),
        fmt=fmt,
        source_name=source_name.strip() if source_name else None,
        campaign=campaign.strip() if campaign else None,
        progress=bar,
    )
    print_report(report)
    return 1 if report.failed else 0


def print_report(report: IngestReport) -> None:
    """The closing summary: a table per source, the totals line, and where the rejects are."""
    rows = [
        (
            s.ref,
            s.format + (f" ({s.packed})" if s.packed else ""),
            s.feed,
            s.records,
            s.new,
            s.duplicate,
            s.rejected,
            s.skipped,
            "ok" if not s.error else "FAILED",
        )
        for s in report.sources
    ]
    columns = ["source", "format", "feed", "records", "new", "duplicate", "rejected", "skipped"]
    out.print(table(f"ingest run {report.run_id}", [*columns, "status"], rows))
    for failed in report.failed:
        err.print(f"tocsin: cannot ingest {escape(failed.ref)}: {escape(failed.error or '')}")
    out.print(f"{report.new} new, {report.duplicate} duplicate, {report.rejected} rejected")
    if report.rejected:
        run = report.run_id
        out.print(f"rejects: run {run} — see `tocsin rejects --run {run}`")

"""`tocsin run SOURCE...`: ingest, crawl, enrich and notify in one go.

Each stage is the same command an operator would run by hand, invoked in this
one process (the crawl runner keeps one reactor for every spider, so crawling
and enrichment's security.txt fetches share it). A stage that fails outright
stops the run; a stage that ran with some failed items (exit 1) does not, and
the run's own exit code is the worst of the stages'.
"""

from __future__ import annotations

import click

from tocsin.app import App
from tocsin.cli import crawl, enrich, ingest, notify
from tocsin.cli._common import pass_app
from tocsin.ui import out


@click.command(name="run")
@ingest.feed_options
@click.option("--dry-run", is_flag=True, help="Stop before sending: print what would be sent.")
@click.pass_context
@pass_app
def command(
    app: App,
    ctx: click.Context,
    sources: tuple[str, ...],
    fmt: str,
    source_name: str | None,
    campaign: str | None,
    dry_run: bool,
) -> int:
    """Ingest, crawl, enrich and notify in one go."""
    stages = [
        (
            "ingest",
            ingest.command,
            {"sources": sources, "fmt": fmt, "source_name": source_name, "campaign": campaign},
        ),
        ("crawl", crawl.command, {"limit": None}),
        ("enrich", enrich.command, {"limit": None, "hosts": ()}),
        ("notify", notify.command, {"dry_run": dry_run}),
    ]
    worst = 0
    for name, stage, params in stages:
        if not app.quiet:
            out.rule(f"[bold]{name}")
        code = ctx.invoke(stage, **params) or 0
        worst = max(worst, code)
        if code >= 2:
            break
    return worst

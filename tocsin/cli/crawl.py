"""`tocsin crawl [--limit N]`: check every URL that is due.

Scrapy fetches and triages each URL (offline, direct payload, HTML); HTML pages
are confirmed in Chromium; the pipelines store the verdict, the evidence, and
for malicious pages the site, its campaign and its incident. Progress goes to
stderr; the closing table counts verdicts by family. Exit code 1 when some URLs
ended in ``error`` (the table and the log say which), or when the crawl stopped
early because the evidence folder is full (one line; those URLs stay due at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import click

from crawler.items import CheckOutcome
from store.leases import unclaimed_due
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.safe_text import terminal_text
from tocsin.ui import err, out, progress, table


def _due_count(app: App) -> int:
    """Due URLs that no other crawl holds: what this run can take (the progress total)."""
    from store.leases import unclaimed_due

    return unclaimed_due(app.db, app.clock.now())


def pack_matches(app: App, outcomes: Iterable[CheckOutcome]) -> list[list[object]]:
    """Per community pack in use: its version and how many checked pages it matched."""
    from crawler.signatures.rulepacks import active_packs

    packs = active_packs(app.config)
    matched: Counter[str] = Counter()
    for outcome in outcomes:
        matched.update({rule.split(":", 1)[0] for rule in outcome.rules if ":" in rule})
    return [[pack.name, pack.version, matched[pack.name]] for pack in packs]


def dropped_line(count: int) -> str:
    """The summary line for checks the store dropped because their lease was taken over."""
    return f"Dropped {count} checks: their lease was taken over by another crawl, which stores them"


@click.command(name="crawl")
@click.option("--limit", type=int, default=None, metavar="N", help="Check at most N URLs.")
@click.option(
    "--enqueue",
    is_flag=True,
    help="Queue the due URLs in batches for `tocsin worker` instead (PostgreSQL).",
)
@pass_app
def command(app: App, limit: int | None, enqueue: bool) -> int:
    """Check every URL that is due: Scrapy fetch and triage, Playwright confirmation."""
    from crawler.runner import RunContext, crawl_due
    from pipelines.checks import HALTED

    if limit is not None and limit < 1:
        raise UsageError("--limit: expected a positive number")
    if enqueue:  # issue 14: batches for `tocsin worker`
        from tocsin.cli.enqueue import enqueue_due

        return enqueue_due(app, limit)
    due = _due_count(app)
    total = min(due, limit) if limit is not None else due
    if total == 0:
        if not app.quiet:
            err.print("crawl: nothing is due")
        return 0
    with progress("crawling", total, quiet=app.quiet) as bar:

        def advance(outcome: CheckOutcome) -> None:
            bar.advance()

        run = RunContext(app)
        outcomes, results = crawl_due(app, limit=limit, on_check=advance, ctx=run)
    halted = next((r.stats[HALTED] for r in results if r.stats.get(HALTED)), None)

    by_family: Counter[tuple[str, str]] = Counter(
        (o.verdict, o.family or "") for o in outcomes.values()
    )
    order = ("malicious", "suspicious", "clean", "offline", "error")
    rows = sorted(
        ([v, f or "-", n] for (v, f), n in by_family.items()),
        key=lambda r: (order.index(r[0]) if r[0] in order else 9, r[1]),
    )
    out.print(table(f"Checked {len(outcomes)} URLs", ["verdict", "family", "URLs"], rows))
    packs = pack_matches(app, outcomes.values())
    if packs:
        out.print(table("Community rule packs", ["pack", "version", "pages matched"], packs))
    if run.dropped:  # another crawl took their leases over: it stores those URLs' checks
        out.print(dropped_line(len(run.dropped)))
    errors = [o for o in outcomes.values() if o.verdict == "error"]
    if errors and not app.quiet:
        for outcome in errors[:20]:
            err.print(f"error: {outcome.url[:200]}: {(outcome.error or '')[:200]}", markup=False)
        if len(errors) > 20:
            err.print(f"... and {len(errors) - 20} more errors")
    # Another crawl's URLs (leased to it) are not this one's to miss.
    missing = min(total - len(outcomes), unclaimed_due(app.db, app.clock.now()))
    if halted:  # one line, even with -q: the operator must free space
        left = f"{missing} URLs left due for the next crawl" if missing > 0 else "stopped"
        click.echo(terminal_text(f"tocsin: crawl stopped: {halted}; {left}"), err=True)
        return 1
    if missing > 0 and not app.quiet:
        err.print(f"crawl: {missing} due URLs were not checked (interrupted?)")
    return 1 if errors or missing > 0 else 0

"""`tocsin recheck`: re-visit due open incidents, then resolve or escalate them."""

from __future__ import annotations

import click

from notifier.service import recheck
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.ui import out, progress, table


@click.command(name="recheck")
@click.option("--limit", type=click.IntRange(min=1), help="Re-check at most N incidents.")
@pass_app
def command(app: App, limit: int | None) -> int:
    """Re-visit the open incidents that are due, then resolve or escalate them."""
    return run(app, limit)


def run(app: App, limit: int | None = None) -> int:
    """What `tocsin recheck` does, and the `tocsin:recheck` job (tocsin/tasks.py); its exit code."""
    with progress("recheck", quiet=app.quiet):
        report = recheck(app, limit=limit)
    rows = [
        ("re-checked", report.checked),
        ("resolved (clean or offline)", report.resolved),
        ("still malicious", report.confirmed),
        ("escalated to the next level", report.escalated),
        ("inconclusive (tried again later)", report.inconclusive),
    ]
    out.print(table("Re-check", ["", "count"], rows))
    if report.escalated:
        out.print("Run `tocsin notify` to send the escalation notices.")
    return 0

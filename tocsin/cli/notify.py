"""`tocsin notify`: send every due notice, batched per recipient, exactly once."""

from __future__ import annotations

import click

from notifier.service import notify
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.safe_text import terminal_text
from tocsin.ui import err, out, progress, table


@click.command(name="notify")
@click.option("--dry-run", is_flag=True, help="Print what would be sent; change nothing.")
@pass_app
def command(app: App, dry_run: bool) -> int:
    """Send every due notice, batched per recipient."""
    with progress("notify", quiet=app.quiet or dry_run):
        report = notify(app, dry_run=dry_run)
    if dry_run:
        rows = [
            [
                w["recipient"],
                w["role"],
                w["language"],
                w["kind"],
                w["level"],
                w["items"] or "",
                w["part"],
                w["subject"],
            ]
            for w in report.would_send
        ]
        out.print(
            table(
                "Would send (dry run: nothing was changed)",
                ["recipient", "role", "lang", "kind", "level", "items", "part", "subject"],
                rows,
            )
        )
        if report.rechecked:
            out.print(f"{report.rechecked} incident(s) would be re-checked first (stale evidence).")
        return 0
    c, s = report.compose, report.send
    rows = [
        ("notices queued", c.notices),
        ("items queued", c.items),
        ("sent", s.sent),
        ("deferred (4xx, will retry)", s.deferred),
        ("bounced (5xx)", s.bounced),
        ("escalated after a bounce", s.escalated),
        ("failed (gave up)", s.failed),
        ("unknown (interrupted, not re-sent)", s.unknown),
        ("reconciled as sent after a crash", s.reconciled_sent),
        ("re-queued after a crash", s.requeued),
        ("held over (one message per recipient per run)", s.held_over),
        ("re-checked before sending", report.rechecked),
        ("resolved by that check", report.resolved),
        ("held (check inconclusive)", report.held),
        ("re-enriched (moved host)", report.reenriched),
        ("suppressed (opt-out)", c.suppressed),
        ("allowlisted", c.allowlisted),
        ("rate-limited (next run)", c.rate_limited),
    ]
    out.print(table("Notify", ["", "count"], [r for r in rows if r[1] or r[0] in ("sent",)]))
    for line in s.errors[:50]:
        err.print(f"failed: {line}", markup=False)
    if s.relay_error:  # one line, and the exit code says it too; nothing was lost
        click.echo(f"tocsin: {terminal_text(s.relay_error)}; the notices stay queued", err=True)
    return 1 if report.failed else 0

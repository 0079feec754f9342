"""`tocsin notify`: send every due notice, batched per recipient, exactly once."""

from __future__ import annotations

from datetime import timedelta

import click

from notifier.service import notify
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.config import parse_duration
from tocsin.errors import UsageError
from tocsin.safe_text import terminal_text
from tocsin.ui import err, out, progress, table


@click.command(name="notify")
@click.option("--dry-run", is_flag=True, help="Print what would be sent; change nothing.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also re-send `unknown` notices (interrupted during DATA) under the same Message-ID.",
)
@click.option(
    "--older-than",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="With --resend-unknown: only notices whose last attempt is at least this old.",
)
@pass_app
def command(app: App, dry_run: bool, resend_unknown: bool, older_than: str) -> int:
    """Send every due notice, batched per recipient."""
    return run(app, dry_run, resend_unknown, older_than)


def run(
    app: App, dry_run: bool = False, resend_unknown: bool = False, older_than: str = "1h"
) -> int:
    """What `tocsin notify` does, and the `tocsin:notify` job (tocsin/tasks.py); its exit code."""
    bound = _resend_bound(resend_unknown, older_than, dry_run)
    with progress("notify", quiet=app.quiet or dry_run):
        report = notify(app, dry_run=dry_run, resend_unknown=bound)
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
        ("unknown re-sent (same Message-ID)", s.resent_unknown),
        ("unknown left (younger than --older-than)", s.unknown_left),
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


def _resend_bound(resend_unknown: bool, older_than: str, dry_run: bool) -> timedelta | None:
    """The age bound for ``--resend-unknown`` (parsed as config durations are), or None."""
    if not resend_unknown:
        return None
    if dry_run:
        raise UsageError("--resend-unknown changes the store; it cannot be combined with --dry-run")
    try:
        return parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None

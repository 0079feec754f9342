"""`tocsin inbox [PATH]`: read bounces and replies from a maildir, an mbox or IMAP."""

from __future__ import annotations

import click

from notifier.inbox import process, read_imap, read_path
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.ui import err, out, progress, table


@click.command(name="inbox")
@click.argument("path", required=False, type=click.Path(path_type=str))
@pass_app
def command(app: App, path: str | None) -> int:
    """Read bounces and replies from a maildir or mbox (IMAP when configured)."""
    messages = read_path(path) if path else read_imap(app)
    with progress("inbox", quiet=app.quiet) as bar:

        def counted():
            for raw in messages:
                bar.advance()
                yield raw

        stats = process(app, counted())
    rows = [
        ("messages read", stats.read),
        ("bounces (DSN): contact bounced", stats.bounces),
        ("incidents escalated at once", stats.escalated),
        ("delivery delayed (ignored)", stats.delayed),
        ("replies joined to a timeline", stats.replies),
        ("out-of-office and auto-replies (ignored)", stats.auto),
        ("no ticket found", stats.unmatched),
        ("already read before", stats.duplicates),
        ("could not be processed", stats.skipped),
    ]
    out.print(table("Inbox", ["", "count"], rows))
    for problem in stats.problems[:20]:
        err.print(f"skipped: {problem}", markup=False)
    if stats.escalated:
        out.print("Run `tocsin notify` to tell the next level.")
    return 1 if stats.skipped else 0

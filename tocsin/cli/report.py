"""`tocsin report asn --since 7d`: the per-network digest, as text or CSV."""

from __future__ import annotations

import click

from notifier import digest
from notifier.outbox import Outbox, SendStats
from notifier.transport import make
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.config import parse_duration
from tocsin.errors import UsageError
from tocsin.ui import err, table


@click.group(name="report")
def command() -> None:
    """Reports for network operators."""


@command.command(name="asn")
@click.option("--since", default="7d", show_default=True, help="The window: 90s, 6h, 7d...")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "csv"]), default="text", show_default=True
)
@click.option("--asn", type=click.IntRange(min=0), help="Only this network.")
@click.option("--send", is_flag=True, help="Mail it to notify.digest_subscribers.")
@pass_app
def asn_report(app: App, since: str, fmt: str, asn: int | None, send: bool) -> int:
    """ASN | IP | host | first seen | status | family, per network."""
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    start = app.clock.now() - window
    rows = digest.collect(app, start, asn)
    if fmt == "csv":
        click.echo(digest.to_csv(rows), nl=False)
    else:
        click.echo(digest.to_text(rows) or "No incidents in this window.")
    if not send:
        return 0
    queued = digest.queue(app, rows, start)
    transport = make(app.config, app.db)
    stats = SendStats()
    try:
        Outbox(app, transport).send_due(stats, kind="digest")
    finally:
        transport.close()
    err.print(
        table(
            "Digest",
            ["", "count"],
            [("queued", queued), ("sent", stats.sent), ("deferred", stats.deferred)],
        )
    )
    return 1 if stats.bounced or stats.failed or stats.unknown else 0

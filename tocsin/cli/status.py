"""`tocsin status`: the campaign summary, as tables or as the contract's JSON."""

from __future__ import annotations

import json

import click

from store.queries import status_summary
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.ui import out, table


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def command(app: App, as_json: bool) -> int:
    """The campaign summary."""
    with app.db.session() as session:
        summary = status_summary(session)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return 0
    urls = summary["urls"]
    out.print(table("URLs", ["verdict", "count"], [(k, v) for k, v in urls.items()]))
    out.print(table("Notices", ["state", "count"], list(summary["notices"].items())))
    columns = ["name", "family", "sites", "open", "notified", "escalated", "resolved"]
    rows = [[c[k] for k in columns] + [c["median_days_to_resolve"]] for c in summary["campaigns"]]
    out.print(table("Campaigns", [*columns, "median days to resolve"], rows))
    return 0

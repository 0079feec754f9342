"""`tocsin export`: one record per URL to stdout, as JSON or CSV."""

from __future__ import annotations

import click

from store.queries import export_records, write_csv
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.safe_text import json_text
from tocsin.ui import data_stdout


@click.command(name="export")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option("--campaign", metavar="NAME", help="Only the URLs of this campaign.")
@pass_app
def command(app: App, fmt: str, campaign: str | None) -> int:
    """One record per URL, to stdout."""
    stream = data_stdout()
    with app.db.session() as session:
        records = export_records(
            session, campaign=campaign, default_tlp=app.config.board.default_tlp
        )
        if fmt == "csv":
            write_csv(records, stream)
            return 0
        # A JSON array written as it streams, so memory stays bounded.
        separator = "\n"
        stream.write("[")
        for record in records:
            stream.write(separator)
            stream.write(json_text(record))
            separator = ",\n"
        stream.write("\n]\n" if separator == ",\n" else "]\n")
    return 0

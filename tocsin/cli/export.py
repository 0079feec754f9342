"""`tocsin export`: one record per URL to stdout, as JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys

import click

from store.queries import CSV_COLUMNS, export_records, flatten
from tocsin.app import App
from tocsin.cli._common import pass_app


@click.command(name="export")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option("--campaign", metavar="NAME", help="Only the URLs of this campaign.")
@pass_app
def command(app: App, fmt: str, campaign: str | None) -> int:
    """One record per URL, to stdout."""
    stream = sys.stdout
    with app.db.session() as session:
        records = export_records(session, campaign=campaign)
        if fmt == "csv":
            writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for record in records:
                writer.writerow(flatten(record))
            return 0
        # A JSON array written as it streams, so memory stays bounded.
        separator = "\n"
        stream.write("[")
        for record in records:
            stream.write(separator)
            stream.write(json.dumps(record, ensure_ascii=False))
            separator = ",\n"
        stream.write("\n]\n" if separator == ",\n" else "]\n")
    return 0

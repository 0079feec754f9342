"""`tocsin rejects`: the feed lines ingest refused, with where they came from and why."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from store.models import IngestRun, Reject
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.safe_text import json_text
from tocsin.ui import out, table


@click.command(name="rejects")
@click.option("--run", "run_id", type=int, help="Only this ingest run (default: the latest).")
@click.option("--all", "all_runs", is_flag=True, help="Every run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def command(app: App, run_id: int | None, all_runs: bool, as_json: bool) -> int:
    """List rejected feed lines: source, line number, reason and the raw bytes."""
    with app.db.session() as session:
        query = select(Reject).order_by(Reject.id)
        if not all_runs:
            run_id = run_id or session.scalar(select(func.max(IngestRun.id)))
            query = query.where(Reject.run_id == run_id)
        rows = list(session.scalars(query))
    if as_json:
        for r in rows:
            raw = r.raw.decode("utf-8", "backslashreplace")
            record = {"run": r.run_id, "source": r.source_ref, "line": r.line_no}
            record |= {"reason": r.reason, "raw": raw, "raw_len": r.raw_len}
            click.echo(json_text(record))
        return 0
    # Table cells are plain text, never markup, and tocsin.ui escapes control characters.
    shown = [
        (r.run_id, r.source_ref, r.line_no, r.reason, _preview(r.raw, r.raw_len)) for r in rows
    ]
    out.print(
        table(f"{len(rows)} rejected lines", ["run", "source", "line", "reason", "raw"], shown)
    )
    return 0


def _preview(raw: bytes, length: int) -> str:
    text = raw[:80].decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # no terminal codes
    return text + (f"… ({length} bytes)" if length > 80 else "")

"""`tocsin board`: the campaign status board, the portal and the HTTP API."""

from __future__ import annotations

import click

from tocsin.app import App
from tocsin.cli._common import pass_app


@click.command(name="board")
@click.option("--host", metavar="H", help="Listen on this address (default: board.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="P", help="Port (default: board.port)."
)
@pass_app
def command(app: App, host: str | None, port: int | None) -> int:
    """The campaign status board, the portal and the HTTP API, until Ctrl-C."""
    from board.server import serve

    serve(app, host or app.config.board.host, app.config.board.port if port is None else port)
    return 0

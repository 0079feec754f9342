"""`tocsin board`: the campaign status board, the portal and the HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from tocsin.app import App
from tocsin.cli._common import pass_app


@click.command(name="board")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The configuration file (the same as tocsin's global --config).",
)
@click.option("--host", metavar="H", help="Listen on this address (default: board.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="P", help="Port (default: board.port)."
)
@pass_app
def command(app: App, config_path: str | None, host: str | None, port: int | None) -> int:
    """The campaign status board, the portal and the HTTP API, until Ctrl-C."""
    from board.server import serve

    if config_path:  # `tocsin board --config demo/tocsin.toml`, as the demo says
        app = App(config_path=Path(config_path), clock=app.clock, verbosity=app.verbosity)

    serve(app, host or app.config.board.host, app.config.board.port if port is None else port)
    return 0

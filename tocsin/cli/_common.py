"""Small pieces the command modules share."""

from __future__ import annotations

import click

from tocsin.app import App
from tocsin.errors import StageUnavailable

pass_app = click.make_pass_decorator(App)


def not_yet(name: str, stage: str, help_text: str) -> click.Command:
    """A command whose stage is not built yet: it says so and exits 2."""

    @click.command(name=name, help=f"{help_text}\n\n(Not available yet: the {stage} stage.)")
    @click.argument("args", nargs=-1)
    def command(args: tuple[str, ...]) -> None:
        raise StageUnavailable(name, stage)

    return command

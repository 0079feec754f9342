"""Small pieces the command modules share."""

from __future__ import annotations

import click

from tocsin.app import App

pass_app = click.make_pass_decorator(App)

"""The ``tocsin`` command line (see CONTRACT.md for the fixed interface).

Each command lives in its own module next to this one and is a thin layer:
it parses options, calls its stage, and prints the summary. Errors derived
from :class:`~tocsin.errors.TocsinError` become one line on stderr and the
exit code the class carries (2 for usage and configuration errors).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click
from rich.logging import RichHandler

from store.db import refused
from tocsin import __version__, config
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.errors import TocsinError, UsageError
from tocsin.safe_text import terminal_text
from tocsin.ui import err


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # Scrapy and Twisted are chatty; their INFO is our DEBUG.
    for name in ("scrapy", "twisted", "asyncio", "aiosmtpd", "mail.log", "httpx", "filelock"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING if verbosity < 2 else level))


# name -> the one-line help shown by ``tocsin --help``. Each command's module is
# imported only when that command runs, so start-up does not pay for every stage
# (Scrapy, Playwright, the notifier) on each invocation.
COMMANDS: dict[str, str] = {
    "init": "Create or migrate the database; safe to repeat.",
    "ingest": "Read suspect URLs from files, - (stdin) or http(s) URLs.",
    "crawl": "Check every URL that is due: Scrapy triage, Playwright confirmation.",
    "worker": "Run queued jobs: crawl batches, enrich, notify, recheck (PostgreSQL).",
    "enrich": "Link confirmed sites to IPs, ASN and prefix, registrar, and contacts.",
    "notify": "Send every due notice, batched per recipient.",
    "recheck": "Re-visit the open incidents that are due, then resolve or escalate them.",
    "run": "Ingest, crawl, enrich and notify in one go.",
    "inbox": "Read bounces and replies from a maildir or mbox.",
    "status": "The campaign summary.",
    "export": "One record per URL, to stdout.",
    "package": "An evidence package (zip) for CSIRTs and police, or --verify one.",
    "rejects": "List rejected feed lines with their source, line and reason.",
    "report": "Reports for operators (per-ASN digest).",
    "asn": "Build or refresh the pyasn database.",
    "rules": "The detection rules: list, test on a page, update the community packs.",
    "board": "The campaign status board, the portal and the HTTP API.",
    "serve": "The board plus the schedule: feeds, crawl, enrich, notify, recheck, inbox.",
    "user": "Log-ins to the board (add, list, remove).",
    "token": "Bearer tokens for the board's API (create, list, revoke).",
    "demo": "The whole pipeline against the bundled sandbox on loopback.",
}


class LazyGroup(click.Group):
    """A click group that imports ``tocsin.cli.<name>`` on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return importlib.import_module(f"tocsin.cli.{cmd_name}").command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a database error it did not expect is one line, exit 2.

        A read-only store, a role without rights or a full disk fails whatever
        statement comes first, in any stage: the run cannot go on, and a traceback
        (kept for ``-vv``) would bury the reason and print the statement's feed text.
        """
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            app = ctx.obj
            if not isinstance(app, App):
                raise
            logging.getLogger("tocsin").debug("the store refused", exc_info=True)
            raise refused(exc, app.config.database.url) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", help="TOML configuration file.")
@click.option("--now", metavar="ISO-8601", help="The clock for every time-driven decision.")
@click.option("-v", "--verbose", count=True, help="More logging (repeat for more).")
@click.option("-q", "--quiet", is_flag=True, help="Less logging and no progress bars.")
@click.version_option(__version__, prog_name="tocsin")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, now: str | None, verbose: int, quiet: bool):
    """tocsin: find compromised websites and get them cleaned up."""
    verbosity = -1 if quiet else verbose
    _setup_logging(verbosity)
    try:
        clock = Clock.at(now)
    except ValueError:
        raise UsageError(f"--now: expected an ISO-8601 time, got {now!r}") from None
    ctx.obj = App(config_path=config.resolve_path(config_path), clock=clock, verbosity=verbosity)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; maps tocsin errors to one line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="tocsin", standalone_mode=False)
    except TocsinError as exc:
        click.echo(terminal_text(f"tocsin: {exc}"), err=True)  # errors quote feeds and pages
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("tocsin: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)

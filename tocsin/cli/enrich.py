"""`tocsin enrich`: link confirmed sites to IPs, ASN and prefix, registrar, and contacts."""

from __future__ import annotations

import click

from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.ui import err, out, progress, table


@click.command(name="enrich")
@click.option("--limit", type=click.IntRange(min=1), help="Enrich at most N due sites.")
@click.option(
    "--site",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="Enrich this site now, due or not (repeatable).",
)
@pass_app
def command(app: App, limit: int | None, hosts: tuple[str, ...]) -> int:
    """Enrich every site that is due: DNS, ASN and prefix, RDAP, security.txt, ladders.

    A site is due when it was never enriched, when a gap left by an earlier run
    (a rate-limited or unreachable RDAP server, an unreachable security.txt) is
    due for a retry, when its data is older than enrich.refresh_after, or when
    it has an open incident without a ladder. Exit code 1 when some sites are
    left partial (they are retried later).
    """
    return run(app, limit, hosts)


def run(app: App, limit: int | None = None, hosts: tuple[str, ...] = ()) -> int:
    """What `tocsin enrich` does, and the `tocsin:enrich` job (tocsin/tasks.py); its exit code."""
    from sqlalchemy import select

    from enrich.service import Enricher, enrich_sites
    from store.models import Site
    from tocsin.errors import UsageError

    site_ids = None
    if hosts:
        with app.db.session() as session:
            found = dict(
                session.execute(
                    select(Site.host, Site.id).where(Site.host.in_([h.lower() for h in hosts]))
                ).all()
            )
        missing = [h for h in hosts if h.lower() not in found]
        if missing:
            raise UsageError(f"--site: no such site: {', '.join(missing)}")
        site_ids = sorted(found.values())
    else:
        with app.db.session() as session:
            site_ids = Enricher(app.config, app.db, app.clock.now()).due_site_ids(session, limit)
    with progress("enrich", total=len(site_ids), quiet=app.quiet) as bar:
        summary = enrich_sites(app, site_ids, on_batch=bar.advance)

    ratio = summary.cache_hit_ratio
    rows = [
        ["sites", summary.sites],
        ["done", summary.done],
        ["partial (retried later)", summary.partial],
        ["open incidents", summary.incidents],
        ["ladder rungs", summary.recipients],
        ["RDAP queries", summary.rdap_queries],
        ["RDAP cache hit ratio", "-" if ratio is None else f"{ratio:.0%}"],
    ]
    rows += [[f"contacts: {name}", count] for name, count in sorted(summary.contacts.items())]
    rows += [[f"gap: {name}", count] for name, count in sorted(summary.gaps.items())]
    if not app.quiet:
        out.print(table("enrich", ["", "count"], rows))
    for report in summary.partial_sites[:20]:
        err.print(
            f"partial: {report.host}: {'; '.join(report.errors)[:300] or ', '.join(report.gaps)}",
            markup=False,
        )
    if len(summary.partial_sites) > 20:
        err.print(f"... and {len(summary.partial_sites) - 20} more partial sites")
    return 1 if summary.partial else 0

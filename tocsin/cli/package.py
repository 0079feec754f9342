"""`tocsin package`: an evidence package for CSIRTs and police, and its verification."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.ui import out


@click.command(name="package")
@click.argument("idents", nargs=-1, metavar="INCIDENT_OR_TICKET...")
@click.option("--campaign", metavar="NAME", help="Every incident of this campaign.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip to write (default: package-<what>-<time>.zip here).",
)
@click.option(
    "--verify",
    "verify_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE.zip",
    help="Check a package's hashes and timestamp instead of making one.",
)
@click.option(
    "--tsa-ca",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PEM",
    help="The TSA's CA certificate for --verify (default: package.tsa_ca).",
)
@pass_app
def command(
    app: App,
    idents: tuple[str, ...],
    campaign: str | None,
    output: Path | None,
    verify_path: Path | None,
    tsa_ca: str | None,
) -> int:
    """Write one zip of an incident's or a campaign's evidence, or --verify one."""
    if verify_path is not None:
        if idents or campaign or output:
            raise UsageError("package --verify takes only the zip (and --tsa-ca)")
        return _verify(app, verify_path, tsa_ca)
    if idents and campaign:
        raise UsageError("package: name incidents or --campaign, not both")
    from handoff.package import select_incidents, write_package

    with app.db.session() as session:
        ids = select_incidents(session, list(idents), campaign)
    now = app.clock.now()
    scope = {"campaign": campaign} if campaign else {"incidents": list(idents)}
    if output is None:
        what = re.sub(r"[^A-Za-z0-9-]+", "-", campaign or "-".join(idents))[:60].strip("-")
        output = Path(f"package-{what or 'incidents'}-{now:%Y%m%dT%H%M%SZ}.zip")
    summary = write_package(app.db, app.config, ids, output, now, scope)
    stamp = "timestamped" if summary.timestamped else "no timestamp (package.tsa_url not set)"
    out.print(
        f"wrote {output}: {summary.incidents} incident(s), {summary.files} files, "
        f"{summary.size:,} bytes; manifest sha256 {summary.manifest_sha256}; {stamp}"
    )
    return 0


def _verify(app: App, path: Path, tsa_ca: str | None) -> int:
    from handoff.timestamp import load_roots
    from handoff.verify import verify_package

    ca = tsa_ca or app.config.package.tsa_ca
    roots = load_roots(ca) if ca else None
    report = verify_package(path, roots)
    for problem in report.problems:
        out.print(f"FAILED {problem}")
    if not report.ok:
        out.print(f"{path}: does not verify ({len(report.problems)} problem(s))")
        return 1
    made = report.manifest.get("created")
    by = report.manifest.get("operator") or "an operator not named"
    line = f"{path}: OK, {report.files} files match the manifest (made {made} by {by})"
    if report.stamp is not None:
        line += f"; timestamped {report.stamp.time.isoformat()} by {report.stamp.tsa or 'the TSA'}"
    else:
        line += "; no timestamp"
    out.print(line)
    return 0

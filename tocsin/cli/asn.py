"""`tocsin asn update`: build fresh pyasn tables from the latest RouteViews RIB dumps."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import click
import httpx
from rich.markup import escape

from enrich.asn import ConversionReport, convert_rib
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import FetchError
from tocsin.ui import err, out, progress, table

_RIB = re.compile(r'href="(rib\.(\d{8})\.(\d{4})\.bz2)"')


def latest_rib_url(index_base: str, now: datetime, timeout: float) -> str:
    """The newest ``rib.YYYYMMDD.HHMM.bz2`` in this month's (else last month's) RIBS folder."""
    month = now.replace(day=1)
    for candidate in (month, (month - timedelta(days=1)).replace(day=1)):
        folder = f"{index_base.rstrip('/')}/{candidate:%Y.%m}/RIBS/"
        try:
            response = httpx.get(folder, timeout=timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot list {folder}: {exc}") from None
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            raise FetchError(f"cannot list {folder}: HTTP {response.status_code}")
        names = sorted({m[1] for m in _RIB.finditer(response.text)})
        if names:
            return folder + names[-1]
    raise FetchError(f"no RIB dump found under {index_base}")


def download(url: str, dest: Path, *, timeout: float, max_bytes: int, quiet: bool) -> Path:
    """Stream ``url`` to ``dest`` with a size cap; a partial file keeps a ``.part`` name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0) or None
            written = 0
            with part.open("wb") as handle, progress(dest.name, total, quiet=quiet) as bar:
                for chunk in response.iter_bytes(1 << 16):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FetchError(f"{url}: larger than asn.max_download ({max_bytes})")
                    handle.write(chunk)
                    bar.advance(len(chunk))
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc}") from None
    part.replace(dest)
    return dest


def _report_rows(label: str, report: ConversionReport, path: Path) -> list[list[object]]:
    return [
        [
            label,
            report.records,
            report.prefixes_v4,
            report.prefixes_v6,
            "yes" if report.truncated else "no",
            str(path),
        ]
    ]


@click.group(name="asn")
def command() -> None:
    """ASN tables (pyasn) for `tocsin enrich`."""


@command.command(name="update")
@click.option(
    "--rib",
    "ribs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Convert this local MRT RIB dump (.bz2/.gz) instead of downloading; repeatable.",
)
@click.option("--url", "urls", multiple=True, help="Download and convert this RIB dump URL.")
@click.option("--v6/--no-v6", default=True, show_default=True, help="Also fetch route-views6.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Where to write the tables (default: asn.update_dir).",
)
@pass_app
def update(
    app: App, ribs: tuple[str, ...], urls: tuple[str, ...], v6: bool, out_dir: str | None
) -> int:
    """Download the latest RouteViews RIB and convert it with pyasn's MRT reader.

    Writes ``ipasn_<date>.dat.gz`` (IPv4) and, with --v6, ``ipasn6_<date>.dat.gz``,
    then prints the `asn.ipasn_db` / `asn.ipasn6_db` lines to put in the config.
    A dump that ends mid-record (an interrupted download) is converted up to the
    cut and reported; the exit code is then 1.
    """
    config = app.config.asn
    folder = Path(out_dir or config.update_dir)
    timeout = config.download_timeout.total_seconds()
    jobs: list[tuple[str, Path]] = []  # (family label, local RIB path)
    if ribs:
        jobs = [("mixed", Path(r)) for r in ribs]
    else:
        now = app.clock.now()
        sources = list(urls) or [latest_rib_url(config.routeviews_url, now, timeout)]
        if v6 and not urls:
            base6 = config.routeviews_url.replace("/bgpdata", "/route-views6/bgpdata")
            sources.append(latest_rib_url(base6, now, timeout))
        for url in sources:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            label = "v6" if "route-views6" in url else "v4"
            dest = folder / ("v6-" + name if label == "v6" else name)
            jobs.append(
                (
                    label,
                    download(
                        url,
                        dest,
                        timeout=timeout,
                        max_bytes=config.max_download,
                        quiet=app.quiet,
                    ),
                )
            )
    rows: list[list[object]] = []
    written: dict[str, Path] = {}
    truncated = False
    for label, rib in jobs:
        stamp = re.search(r"(\d{8})\.(\d{4})", rib.name)
        suffix = f"{stamp[1]}" if stamp else rib.stem
        if label == "v6":
            target = folder / f"ipasn6_{suffix}.dat.gz"
            report = convert_rib(rib, target, only=6)
        else:
            target = folder / f"ipasn_{suffix}.dat.gz"
            report = convert_rib(rib, target)
        written.setdefault(label, target)
        truncated = truncated or report.truncated
        if report.problem:
            err.print(f"[yellow]{escape(rib.name)}: {escape(report.problem)}[/]")
        rows += _report_rows(label, report, target)
    out.print(
        table(
            "ASN tables",
            ["family", "records", "IPv4 prefixes", "IPv6 prefixes", "truncated", "file"],
            rows,
        )
    )
    v4 = written.get("v4") or written.get("mixed")
    if v4:
        out.print(f'[asn]\nipasn_db = "{v4}"', markup=False)
    if "v6" in written:
        out.print(f'ipasn6_db = "{written["v6"]}"', markup=False)
    return 1 if truncated else 0
